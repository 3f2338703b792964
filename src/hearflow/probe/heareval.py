"""probe.engine: heareval — the official kit's predictions runner on our embedding dirs.

    from hearflow.probe.heareval import heareval_probe
    result = heareval_probe(Path("results/configs/logmel/demo_tones-v1-full"),
                            python=".venv-heareval/bin/python", grid={"max_epochs": [30]})

heareval 2021.1.3 runs in its own virtualenv (`.venv-heareval`, made by `bootstrap.sh --heareval` from
requirements-heareval-runner.txt; its pins differ from ours: pytorch-lightning 1.9.5 needs
numpy < 2). The embedding dir is linked file by file into a scratch copy (heareval writes
its logs, checkpoints and scores into the task dir), `heareval_launch.py` runs
`heareval.predictions.runner` there with our grid and seed, and `test.predicted-scores.json`
is converted to every engine's result (`hearflow.probe.protocol.engine_result`). Torch-free:
heareval runs in its own process.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from hearflow.core.io import read_json
from hearflow.probe.heareval_launch import IMPORTS_DONE
from hearflow.probe.protocol import DEFAULT_GRID, data_splits, engine_result, fold_result

# Run by path (outside this package: its folder would shadow the heareval package).
LAUNCHER = Path(__file__).parent / "heareval_launch.py"
# Grid keys the native engine has and heareval has not; heareval runs them at these values.
_NATIVE_ONLY = {"shuffle_train": False}
# heareval's hparams hold str() of torch objects; map them back to our value names.
_VALUE_NAMES = {
    "BatchNorm1d": "batchnorm",
    "LayerNorm": "layernorm",
    "Identity": "identity",
    "xavier_uniform_": "xavier_uniform",
    "xavier_normal_": "xavier_normal",
    "Adam": "adam",
    "SGD": "sgd",
}


def heareval_grid(grid: dict | None) -> dict[str, list]:
    """The complete grid heareval gets: DEFAULT_GRID updated by `grid`, without native-only keys."""
    full = {k: list(v) for k, v in DEFAULT_GRID.items()}
    for key, value in (grid or {}).items():
        if key not in full:
            raise ValueError(f"unknown grid key {key!r}; known: {sorted(full)}")
        full[key] = list(value) if isinstance(value, list | tuple) else [value]
    for key, only in _NATIVE_ONLY.items():
        if full.pop(key) != [only]:
            raise ValueError(f"probe.engine heareval cannot run grid {key}={grid[key]}; it only has {only}")
    return full


def _value_name(value):
    if isinstance(value, str):
        for name, ours in _VALUE_NAMES.items():
            if name in value:
                return ours
    return value


def convert_scores(predicted: dict, metadata: dict, *, task: str, seed: int, grid_points: int) -> dict:
    """heareval's test.predicted-scores.json -> engine_result. `task` is the task
    directory's name (metadata `task_name` is shared: nsynth_pitch 5h and 50h)."""
    metrics = list(metadata["evaluation"])
    folds = []
    for split in data_splits(metadata):
        key = "|".join(split["test"])
        if key not in predicted:
            raise ValueError(f"heareval scores lack test split {key!r}; has {sorted(predicted)}")
        fold = predicted[key]
        folds.append(
            fold_result(
                split["test"],
                {m: float(fold[f"test_{m}"]) for m in metrics},
                best_epoch=int(fold["epoch"]),
                validation_score=float(fold["validation_score"]),
            )
        )
    grid_keys = set(heareval_grid(None))
    return engine_result(
        task,
        "heareval",
        seed,
        folds,
        {k: _value_name(v) for k, v in predicted["hparams"].items() if k in grid_keys},
        grid_points=grid_points,
        postprocessing=dict(predicted["postprocessing"]) if metadata["embedding_type"] == "event" else None,
    )


def heareval_probe(
    emb_dir: Path,
    *,
    python: str | Path,
    grid: dict | None = None,
    max_grid_points: int = 8,
    seed: int = 42,
    device: str | None = None,
    log: Path | None = None,
) -> dict:
    """Run heareval's runner on a copy of `emb_dir`; engine_result, as every engine.

    `python` is the heareval virtualenv's interpreter. `device` "cuda" trains on GPU 0,
    anything else on the CPU (None: CUDA when the heareval environment sees one).
    heareval's own output (its log) goes to `log` when given.
    """
    emb_dir = Path(emb_dir).resolve()
    python = Path(os.path.abspath(python))  # not resolve(): a venv interpreter is a symlink
    if not python.is_file():
        raise FileNotFoundError(
            f"probe.heareval_python {python} does not exist; create it with ./bootstrap.sh --heareval "
            "(it builds .venv-heareval from requirements-heareval-runner.txt)"
        )
    metadata = read_json(emb_dir / "task_metadata.json")
    full = heareval_grid(grid)
    gpus = {None: None, "cpu": "null"}.get(device, "[0]")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    # heareval's checkpoints pickle classes; Lightning's deterministic mode on CUDA needs cuBLAS's workspace.
    env.update(TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD="1", CUBLAS_WORKSPACE_CONFIG=":4096:8")
    with tempfile.TemporaryDirectory(prefix="heareval-") as scratch:
        task_dir = Path(scratch) / emb_dir.name
        task_dir.mkdir()
        for path in emb_dir.iterdir():
            if path.is_file():
                (task_dir / path.name).symlink_to(path)
        cmd = [
            str(python),
            # -P: the launcher's folder (this package) stays off sys.path, where its heareval.py
            # would shadow heareval itself
            "-P",
            str(LAUNCHER),
            str(task_dir),
            "--grid-json",
            json.dumps(full),
            "--seed",
            str(seed),
            "--grid-points",
            str(max_grid_points),
        ]
        if gpus is not None:
            cmd += ["--gpus", gpus]
        start = time.time()
        proc = subprocess.run(cmd, cwd=scratch, env=env, capture_output=True, text=True)
        if log is not None:
            Path(log).parent.mkdir(parents=True, exist_ok=True)
            Path(log).write_text(proc.stdout + proc.stderr)
        if proc.returncode != 0:
            raise RuntimeError(
                f"heareval runner failed on {emb_dir} (exit {proc.returncode}):\n" + (proc.stdout + proc.stderr)[-4000:]
            )
        predicted = read_json(task_dir / "test.predicted-scores.json")
        if log is not None:
            shutil.copyfile(task_dir / "test.predicted-scores.json", Path(log).with_suffix(".scores.json"))
    end = time.time()
    result = convert_scores(predicted, metadata, task=emb_dir.name, seed=seed, grid_points=max_grid_points)
    result["heareval_seconds"] = end - start
    marks = [line.split()[-1] for line in proc.stderr.splitlines() if line.startswith(IMPORTS_DONE)]
    if marks:  # the runner's own time, its process start and imports left out
        result["heareval_seconds_after_imports"] = end - float(marks[-1])
    return result
