"""The probe engines (params `probe.engine`), one signature each: dirs and settings in, results out.

    from hearflow.probe import ENGINES, ProbeSettings
    [result] = ENGINES["native"]([emb_dir], ProbeSettings(grid={"hidden_dim": [256]}))
    per_layer = probe_dirs("linear", layer_dirs, ProbeSettings(linear={"epochs": 200}))

`native`: heareval's protocol in torch (hearflow.probe.native); `heareval`: the official
kit's runner in its own virtualenv (hearflow.probe.heareval); `linear`: ARCH-style linear
probe (hearflow.probe.linear). An engine takes embedding dirs of one task (several: e.g.
a model's layers, which the linear engine trains together) and returns one
hearflow.probe.protocol.engine_result per dir, in order. Engines are imported on first
use, so this module stays torch-free.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ProbeSettings:
    """What an engine gets besides the dirs; each engine reads the fields named for it."""

    seed: int = 42
    device: str | None = None  # None: CUDA when present, else the CPU
    grid: dict | None = None  # native, heareval: overrides of DEFAULT_GRID, key by key
    max_grid_points: int = 8  # native, heareval: points of the seeded shuffle tried
    rng: str = "per_point"  # native: how a several-point grid draws (probe_task)
    workers: int | None = None  # native, CPU: processes the grid points share (None: torch's threads)
    linear: dict | None = None  # linear: linear_probe's settings (params probe.linear)
    heareval_python: str | Path | None = None  # heareval: the .venv-heareval interpreter
    log: Path | None = None  # heareval: where its runner's output goes
    # Probe seeds (None: [seed]; the first must be `seed`): native retrains its chosen point
    # with each further seed; the other engines repeat their whole run per seed.
    seeds: tuple[int, ...] | None = None
    bootstrap: int = 0  # native: clip resamples per seed for the intervals (hearflow.report.stats)


def _native(emb_dirs: list[Path], settings: ProbeSettings) -> list[dict]:
    from hearflow.probe.native import probe_task

    return [
        probe_task(
            d,
            grid=settings.grid,
            max_grid_points=settings.max_grid_points,
            seed=settings.seed,
            device=settings.device,
            rng=settings.rng,
            workers=settings.workers,
            seeds=list(settings.seeds) if settings.seeds else None,
            bootstrap=settings.bootstrap,
        )
        for d in emb_dirs
    ]


def _heareval(emb_dirs: list[Path], settings: ProbeSettings) -> list[dict]:
    from hearflow.probe.heareval import heareval_probe

    if not settings.heareval_python:
        raise ValueError("probe.engine heareval needs probe.heareval_python (the heareval venv's python)")
    if settings.log is not None and len(emb_dirs) > 1:
        raise ValueError(f"one heareval log for {len(emb_dirs)} embedding dirs: probe them one by one")
    return [
        heareval_probe(
            d,
            python=settings.heareval_python,
            grid=settings.grid,
            max_grid_points=settings.max_grid_points,
            seed=settings.seed,
            device=settings.device,
            log=settings.log,
        )
        for d in emb_dirs
    ]


def _linear(emb_dirs: list[Path], settings: ProbeSettings) -> list[dict]:
    from hearflow.probe.linear import linear_probe

    return linear_probe(list(emb_dirs), seed=settings.seed, device=settings.device, **(settings.linear or {}))


ENGINES: dict[str, Callable[[list[Path], ProbeSettings], list[dict]]] = {
    "native": _native,
    "heareval": _heareval,
    "linear": _linear,
}


def probe_dirs(engine: str, emb_dirs: list[Path], settings: ProbeSettings) -> list[dict]:
    """ENGINES[engine] on embedding dirs of one task: one result per dir, in order. Several
    probe seeds: native handles them itself; another engine runs once per seed, and each
    result gets the seeds' mean (hearflow.probe.protocol.with_seeds; no clip resamples)."""
    if engine not in ENGINES:
        raise ValueError(f"probe.engine {engine!r} is not available; choose one of {tuple(ENGINES)}")
    seeds = list(settings.seeds) if settings.seeds else [settings.seed]
    if seeds[0] != settings.seed:
        raise ValueError(f"probe seeds {seeds}: the first must be the run's seed ({settings.seed})")
    if engine == "native" or len(seeds) == 1:
        return ENGINES[engine](list(emb_dirs), settings)
    from dataclasses import replace

    from hearflow.probe.protocol import with_seeds

    runs = [ENGINES[engine](list(emb_dirs), replace(settings, seed=s, seeds=None)) for s in seeds]
    return [with_seeds(r[0], seeds, [(r_s["folds"], []) for r_s in r]) for r in zip(*runs, strict=True)]
