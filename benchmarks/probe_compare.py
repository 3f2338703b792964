"""Probe engines side by side on the demo tasks, for the parity tests and probe_engines.py.

    from benchmarks.probe_compare import demo_embeddings, run_engine   # tests (pytest's rootdir on the path)
    dirs = demo_embeddings(Path("/tmp/cmp"), seed=42, scale=0.5)       # {task: emb_dir}
    native = run_engine("native", dirs["demo_tones-v1-full"], grid=PARITY_GRID, max_grid_points=4, seed=42)

Embeddings are a log-mel front end straight on the demo's 48 kHz audio (no weights, no
resampling: cheap and deterministic), written in heareval's format by `embed_task`.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from hearflow.data.demo import DEMO_TASKS, synthesize_task
from hearflow.embed.job import embed_task
from hearflow.probe import ProbeSettings, probe_dirs

# Front end of the comparison: 64 log-mel bands at a 50 ms hop (the HEAR maximum), so
# event tasks have few frames.
LOGMEL_48K = {"sample_rate": 48000, "n_mels": 64, "hop_ms": 50.0, "win_ms": 25.0, "n_fft": 2048}
# One reduced grid for both engines: 4 points (2 depths x 2 learning rates), as in the demo.
PARITY_GRID = {
    "hidden_layers": [1, 2],
    "hidden_dim": [256],
    "lr": [1e-3, 3.2e-4],
    "initialization": ["xavier_uniform"],
    "max_epochs": [30],
    "patience": [4],
}


def demo_embeddings(root: Path, *, seed: int, scale: float, tasks=DEMO_TASKS) -> dict[str, Path]:
    """Synthesize the demo tasks under root/tasks and embed them to root/emb/<task> (once)."""
    dirs = {}
    for name in tasks:
        out = Path(root) / "emb" / name
        if not (out / "last" / "task_metadata.json").is_file():
            task_dir = synthesize_task(name, Path(root) / "tasks", seed=seed, scale=scale)
            embed_task(task_dir, out, module="logmel", options=LOGMEL_48K, device="cpu", progress=False)
        dirs[name] = out / "last"
    return dirs


def run_engine(
    engine: str,
    emb_dir: Path,
    *,
    grid: dict | None,
    max_grid_points: int,
    seed: int,
    heareval_python: str | Path | None = None,
    device: str | None = None,
    rng: str = "per_point",
) -> dict:
    """One engine's result on one embedding dir, with its wall time in "seconds" (`grid`
    None: the engine's default grid, heareval's; `rng`: the native engine's, probe_task)."""
    settings = ProbeSettings(
        seed=seed, device=device, grid=grid, max_grid_points=max_grid_points, rng=rng, heareval_python=heareval_python
    )
    start = time.time()
    [result] = probe_dirs(engine, [emb_dir], settings)
    result["seconds"] = time.time() - start
    return result


def parity(native: list[dict], heareval: dict, *, floor: float = 0.02) -> dict:
    """Per metric: native mean and spread over seeds (max - min), heareval's score, the
    difference, and whether it is within max(spread, floor) (scores as fractions: 0.02 is
    2 points)."""
    out = {}
    for metric, ref in heareval["metrics"].items():
        values = np.array([r["metrics"][metric] for r in native], dtype=np.float64)
        spread = float(values.max() - values.min())
        diff = float(values.mean() - ref)
        out[metric] = {
            "native": values.tolist(),
            "native_mean": float(values.mean()),
            "native_std": float(values.std(ddof=1)) if len(values) > 1 else 0.0,
            "native_spread": spread,
            "heareval": float(ref),
            "difference": diff,
            "tolerance": max(spread, floor),
            "within": bool(abs(diff) <= max(spread, floor)),
        }
    return out
