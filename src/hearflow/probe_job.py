"""One probe job: run an engine on a configuration's embedding dir, write scores.json."""

from __future__ import annotations

import time
from pathlib import Path

from hearflow.embed import run_environment
from hearflow.io import read_json, write_json

ENGINES = ("native",)


def run_probe(
    emb_dir: Path, out: Path, *, engine: str, grid: dict, max_grid_points: int, seed: int
) -> dict:
    """Probe `emb_dir` and write `out` (scores, chosen hyper-parameters, engine, seed, provenance)."""
    if engine not in ENGINES:
        raise ValueError(f"probe.engine {engine!r} is not available; choose one of {ENGINES}")
    from hearflow.probe import probe_task

    start = time.time()
    scores = probe_task(emb_dir, grid=grid, max_grid_points=max_grid_points, seed=seed)
    config = read_json(emb_dir / "config.json") if (emb_dir / "config.json").is_file() else {}
    scores["evaluation"] = read_json(emb_dir / "task_metadata.json")["evaluation"]  # metric order
    scores["config"] = config
    scores["stand_in"] = bool(config.get("stand_in", False))
    scores["provenance"] = run_environment(start)
    write_json(out, scores)
    return scores
