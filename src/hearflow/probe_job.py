"""Probe jobs: an engine on a configuration's embedding dir, or on every layer of a model.

    run_probe(Path("results/configs/logmel/demo_tones-v1-full"), Path("scores.json"), engine="native", ...)
    run_layer_probe(Path("results/members/hubert_standin/demo_tones-v1-full"), Path("scores.json"), ...)

Engines (params `probe.engine`) are hearflow.probe.ENGINES: `native` (heareval's protocol,
grid points trained together), `heareval` (the official kit's runner in its own
virtualenv), `linear` (ARCH-style linear probe).
"""

from __future__ import annotations

import time
from pathlib import Path

from hearflow.io import read_json, write_json
from hearflow.probe import ProbeSettings, probe_dirs
from hearflow.provenance import log_run, result_provenance

LAYER_ENGINES = ("linear", "native")  # the engines of layer-wise probing (params probe.layers.engine)


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
    the probe seeds and clip resamples behind the intervals (hearflow.stats)."""
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
            "of multi-layer models only (hearflow.embed)"
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
