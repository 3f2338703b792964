"""Probe jobs: an engine on a configuration's embedding dir, or on every layer of a model.

    run_probe(Path("results/configs/logmel/demo_tones-v1-full"), Path("scores.json"), engine="native", ...)
    run_probes([(emb_dir, out), ...], cache=Path("results/cache/probe"), engine="native", ...)  # wide job
    run_layer_probe(Path("results/members/hubert_standin/demo_tones-v1-full"), Path("scores.json"), ...)
    run_layer_probes([(member_dir, out), ...], cache=Path("results/cache/probe_layers"), ...)  # wide job

A wide job (rule probe_wide: one configuration, every task of the suite, one interpreter
start instead of one per task) keeps each task's scores in a content-addressed cache
(`probe_key`: the embedding dir's bytes, the engine's settings, the hearflow code and library
versions it runs, the numerics), so that when the job reruns (one task's embeddings changed)
or restarts after a kill it computes only the tasks whose key it has not seen. A wide
layer-wise job (rule probe_layers_wide: one model, every scene task) does the same with its
member dirs (`run_layer_probes`, results/cache/probe_layers).

Engines (params `probe.engine`) are hearflow.probe.ENGINES: `native` (heareval's protocol,
grid points trained together), `heareval` (the official kit's runner in its own
virtualenv), `linear` (ARCH-style linear probe).
"""

from __future__ import annotations

import hashlib
import json
import logging
import sys
import time
from importlib import metadata
from pathlib import Path

from hearflow.core.devices import default_device
from hearflow.core.io import atomic_path, read_json, write_json
from hearflow.core.provenance import log_run, result_provenance
from hearflow.probe import ProbeSettings, probe_dirs

LAYER_ENGINES = ("linear", "native")  # the engines of layer-wise probing (params probe.layers.engine)


def engine_settings(params, threads: int) -> dict:
    """The engine settings of a probe job (rules probe and probe_wide pass the same params:
    probe.* and seed): the keyword arguments of `run_probe` and `run_probes` but the paths."""
    return {
        "engine": params.engine,
        "grid": dict(params.grid),
        "max_grid_points": params.max_grid_points,
        "seed": params.seed,
        "seeds": params.seeds,
        "bootstrap": params.bootstrap,
        "linear": dict(params.linear),
        "heareval_python": params.heareval_python,
        "device": params.device,
        "workers": threads,
    }


def probe_dir(
    emb_dir: Path,
    *,
    engine: str,
    grid: dict,
    max_grid_points: int,
    seed: int,
    linear: dict | None = None,
    heareval_python: str | None = None,
    device: str | None = None,
    log: Path | None = None,
    workers: int | None = None,
    seeds: list[int] | None = None,
    bootstrap: int = 0,
) -> dict:
    """One engine's result on one embedding dir (hearflow.probe.protocol.engine_result).
    `workers`: the job's cores, which the native engine's grid points share on the CPU
    (never changes a result). `seeds` (params probe.seeds; None: [seed]) and `bootstrap`:
    the probe seeds and clip resamples behind the intervals (hearflow.report.stats)."""
    seeds = list(seeds) if seeds else [seed]
    settings = ProbeSettings(
        seed=seeds[0],
        seeds=tuple(seeds),
        bootstrap=bootstrap,
        device=device,
        grid=grid,
        max_grid_points=max_grid_points,
        linear=linear,
        heareval_python=heareval_python,
        log=log,
        workers=workers,
    )
    return probe_dirs(engine, [emb_dir], settings)[0]


def run_probe(emb_dir: Path, out: Path, **engine_args) -> dict:
    """Probe `emb_dir` and write `out`: every metric of the task (mean and std over folds),
    per-fold results, the chosen hyper-parameters, engine, seed and provenance."""
    start = time.time()
    scores = probe_dir(emb_dir, **engine_args)
    config = read_json(emb_dir / "config.json") if (emb_dir / "config.json").is_file() else {}
    scores["evaluation"] = read_json(emb_dir / "task_metadata.json")["evaluation"]  # metric order
    scores["config"] = config
    scores["stand_in"] = bool(config.get("stand_in", False))
    scores["provenance"] = result_provenance()
    log_run(emb_dir.name, start)
    write_json(out, scores)
    return scores


#: Where wide probe jobs keep each task's scores, by key (not a DVC output; safe to delete).
PROBE_CACHE = "results/cache/probe"
#: Libraries whose version can change a probe's numbers (part of the cache key).
KEY_LIBRARIES = ("torch", "numpy", "scikit-learn", "scipy", "heareval", "sed_eval", "dcase_util")
#: The script of wide probe jobs: the key hashes it and every hearflow module it imports,
#: transitively, lazy imports too (hearflow.core.codedeps: the probe stage's DVC code deps).
PROBE_SCRIPTS = ("scripts/probe_wide.py",)
#: The same for wide layer-wise probe jobs (rule probe_layers_wide).
LAYER_PROBE_CACHE = "results/cache/probe_layers"
LAYER_PROBE_SCRIPTS = ("scripts/probe_layers_wide.py",)


def _dir_digest(path: Path) -> str:
    """sha256 over every file of a dir: relative path and content, in sorted order."""
    h = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        h.update(f.relative_to(path).as_posix().encode() + b"\0")
        with open(f, "rb") as stream:
            for block in iter(lambda: stream.read(1 << 20), b""):
                h.update(block)
        h.update(b"\0")
    return h.hexdigest()


def _code_digest(scripts: tuple[str, ...] = PROBE_SCRIPTS) -> dict:
    """The digest of the probe scripts and every hearflow module they import (the probe
    stage's code deps in dvc.yaml), and the versions of the libraries that compute or score
    (KEY_LIBRARIES)."""
    from hearflow.core.codedeps import ROOT, code_files

    h = hashlib.sha256()
    for rel in code_files(list(scripts), root=ROOT):
        h.update(rel.encode() + b"\0" + (ROOT / rel).read_bytes() + b"\0")
    versions = {}
    for lib in KEY_LIBRARIES:
        try:
            versions[lib] = metadata.version(lib)
        except metadata.PackageNotFoundError:
            versions[lib] = None
    return {"hearflow": h.hexdigest(), "libraries": versions, "python": sys.version.split()[0]}


def probe_key(emb_dir: Path, engine_args: dict, code: dict | None = None) -> str:
    """The cache key of one probe: what its scores.json depends on. The embedding dir's
    files (content, not dates), the engine settings (but the log and `workers`, which never
    change a result), the device it resolves to, the numerics (mode, threads, pins), the hearflow
    code and library versions (`_code_digest`). Equal keys give byte-identical scores."""
    args = {k: v for k, v in engine_args.items() if k not in ("log", "workers")}
    device = str(default_device(args.get("device")))  # None: the device the probe will take
    payload = {
        "inputs": _dir_digest(emb_dir),
        "engine": {**args, "device": device},
        "numerics": result_provenance()["numerics"],
        "code": code if code is not None else _code_digest(),
    }
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def run_probes(
    pairs: list[tuple[Path, Path]], *, cache: Path, log_dir: Path | None = None, **engine_args
) -> dict[str, str]:
    """A wide probe job: `run_probe` on each (emb_dir, out) in order, each task's scores kept
    in `cache` (<key>.json, `probe_key`). A task whose key is in the cache is copied from it,
    byte for byte, instead of computed: after a kill, or when the job reruns because another
    task changed, only new work is done. Returns {emb_dir name: "computed" | "cached"}; each
    is logged with its time. `log_dir`: where the heareval engine's runner output goes, a
    file <task>.heareval.log per task."""

    def compute(emb_dir: Path, out: Path) -> None:
        task_log = log_dir / f"{emb_dir.name}.heareval.log" if log_dir is not None else None
        run_probe(emb_dir, out, log=task_log, **engine_args)

    return _cached_runs("probe", pairs, cache, engine_args, _code_digest(PROBE_SCRIPTS), compute)


def run_layer_probes(pairs: list[tuple[Path, Path]], *, cache: Path, **layer_args) -> dict[str, str]:
    """A wide layer-wise job: `run_layer_probe` on each (member_dir, out) in order, with the
    cache of `run_probes` (keyed by the member dir's bytes and `layer_args`)."""

    def compute(member_dir: Path, out: Path) -> None:
        run_layer_probe(member_dir, out, **layer_args)

    args = {"layer_probe": True, **layer_args}  # never the key of a probe of a config
    return _cached_runs("layer probe", pairs, cache, args, _code_digest(LAYER_PROBE_SCRIPTS), compute)


def _cached_runs(what: str, pairs, cache: Path, args: dict, code: dict, compute) -> dict[str, str]:
    log = logging.getLogger("hearflow")
    cache.mkdir(parents=True, exist_ok=True)
    done = {}
    for i, (src, out) in enumerate(pairs, 1):
        start = time.time()
        key = probe_key(src, args, code)
        entry = cache / f"{key}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        if entry.is_file():
            with atomic_path(out) as tmp:
                tmp.write_bytes(entry.read_bytes())
            done[src.name] = "cached"
        else:
            compute(src, out)
            with atomic_path(entry) as tmp:  # a killed job leaves no half-written entry
                tmp.write_bytes(out.read_bytes())
            done[src.name] = "computed"
        log.info(
            "%s %d/%d %s: %s in %.1f s (cache key %s)",
            what,
            i,
            len(pairs),
            src.name,
            done[src.name],
            time.time() - start,
            key[:12],
        )
    return done


def layer_settings(params, threads: int) -> dict:
    """The settings of a layer-wise probe job (rules probe_layers and probe_layers_wide pass
    the same params): the keyword arguments of `run_layer_probe` and `run_layer_probes` but
    the paths. The grid settings are None unless the layer engine is native (rules/probe.smk)."""
    return {
        "engine": params.engine,
        "seed": params.seed,
        "linear": dict(params.linear),
        "grid": dict(params.grid) if params.grid else None,
        "max_grid_points": params.max_grid_points or 8,
        "device": params.device,
        "workers": threads,
    }


def layer_dirs(member_dir: Path) -> list[Path]:
    """A member's per-layer views, layers/NN, in layer order."""
    return sorted((p for p in (member_dir / "layers").glob("*") if p.name.isdigit()), key=lambda p: int(p.name))


def run_layer_probe(
    member_dir: Path,
    out: Path,
    *,
    engine: str,
    seed: int,
    linear: dict | None = None,
    grid: dict | None = None,
    max_grid_points: int = 8,
    device: str | None = None,
    workers: int | None = None,
) -> dict:
    """Probe every per-layer scene embedding of one model on one task; write `out`:

    {"task", "model", "metric": the task's first metric, "layers": [{"layer", "score",
    "metrics", "metrics_std"}, ...] in layer order, "engine", "seed", "hparams",
    "stand_in", "provenance"}. The linear engine trains all layers together.
    """
    if engine not in LAYER_ENGINES:
        raise ValueError(f"probe.layers.engine {engine!r}: choose one of {LAYER_ENGINES}")
    start = time.time()
    dirs = layer_dirs(member_dir)
    if not dirs:
        raise ValueError(
            f"{member_dir}: no per-layer views (layers/NN); they are written for scene tasks "
            "of multi-layer models only (hearflow.embed.job)"
        )
    settings = ProbeSettings(
        seed=seed, device=device, grid=grid, max_grid_points=max_grid_points, linear=linear, workers=workers
    )
    results = probe_dirs(engine, dirs, settings)
    metadata = read_json(dirs[0] / "task_metadata.json")
    metric = metadata["evaluation"][0]
    provenance = member_dir / "provenance.json"
    member = read_json(provenance) if provenance.is_file() else {}
    scores = {
        "task": member_dir.name,
        "model": member.get("model", member_dir.parent.name),
        "metric": metric,
        "layers": [
            {
                "layer": int(d.name),
                "score": r["metrics"][metric],
                "metrics": r["metrics"],
                "metrics_std": r["metrics_std"],
            }
            for d, r in zip(dirs, results, strict=True)
        ],
        "engine": engine,
        "seed": seed,
        "hparams": results[0]["hparams"],
        "stand_in": bool(member.get("stand_in", False)),
        "provenance": result_provenance(),
    }
    log_run(member_dir.name, start)
    write_json(out, scores)
    return scores
