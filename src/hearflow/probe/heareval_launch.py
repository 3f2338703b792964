"""heareval's predictions runner with our grid and seed; runs inside .venv-heareval.

    .venv-heareval/bin/python -P src/hearflow/probe/heareval_launch.py <emb_task_dir> \
        --grid-json '{"lr": [0.001], ...}' --seed 42 --grid-points 8 [--gpus '[0]']

Standalone: it imports heareval and its own dependencies only (never hearflow, whose pins
differ), and is run by path by `hearflow.probe.heareval`. Everything heareval computes is
its own; three patches change what it is given, not how it trains or scores:

- `PARAM_GRID` becomes the grid of `--grid-json` (a complete grid: norm, initialisation
  and optimiser names mapped to the torch objects heareval's grid holds), so `--grid
  default` means our params grid. Task-specific overrides still apply on top, in
  heareval's own code.
- `seed_everything(42)` becomes `seed_everything(--seed)`.
- pytorch-lightning 1.9.5 has no `FitLoop.current_epoch` setter, so heareval's
  `trainer.fit_loop.current_epoch = grid_point.epoch` (it picks the event post-processing
  of the best validation epoch for the test) sets an unused attribute; the test then asks
  for the post-processing of the last epoch and fails with a KeyError whenever the last
  epoch did not validate. The patch restores the setter heareval was written against:
  it sets the epoch counter that `LightningModule.current_epoch` reads.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

IMPORTS_DONE = "hearflow-launch: imports done at"

_NAMES = {
    "hidden_norm": {"batchnorm": "BatchNorm1d", "layernorm": "LayerNorm", "identity": "Identity"},
    "embedding_norm": {"identity": "Identity"},
    "initialization": {"xavier_uniform": "xavier_uniform_", "xavier_normal": "xavier_normal_"},
    "optim": {"adam": "Adam", "sgd": "SGD"},
}


def heareval_grid(grid: dict) -> dict:
    """Our grid (strings for classes) as heareval's PARAM_GRID (torch objects)."""
    import torch

    where = {
        "hidden_norm": torch.nn,
        "embedding_norm": torch.nn,
        "initialization": torch.nn.init,
        "optim": torch.optim,
    }
    out = {}
    for key, values in grid.items():
        if key in _NAMES:
            out[key] = [getattr(where[key], _NAMES[key][v]) for v in values]
        else:
            out[key] = list(values)
    return out


def patch_heareval(grid: dict, seed: int) -> None:
    import heareval.predictions.task_predictions as tp
    import pytorch_lightning as pl
    from pytorch_lightning.loops.fit_loop import FitLoop

    tp.PARAM_GRID.clear()
    tp.PARAM_GRID.update(heareval_grid(grid))
    tp.seed_everything = lambda _seed, workers=False: pl.seed_everything(seed, workers=workers)

    def set_epoch(loop, epoch: int) -> None:
        loop.epoch_progress.current.completed = epoch

    FitLoop.current_epoch = property(lambda loop: loop.epoch_progress.current.completed, set_epoch)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("task_dir")
    parser.add_argument("--grid-json", required=True, help="complete grid, our key/value names")
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--grid-points", type=int, required=True)
    parser.add_argument("--gpus", default="null", help='JSON: null (CPU) or e.g. "[0]"')
    args = parser.parse_args(argv)
    patch_heareval(json.loads(args.grid_json), args.seed)

    from heareval.predictions.runner import runner

    # When the imports are done: hearflow.probe.heareval times the runner from here too.
    print(f"{IMPORTS_DONE} {time.time():.6f}", file=sys.stderr, flush=True)
    runner.main(
        [
            args.task_dir,
            "--grid-points",
            str(args.grid_points),
            "--grid",
            "default",
            "--gpus",
            args.gpus,
            "--deterministic",
            "True",
            "--in-memory",
            "True",
        ],
        standalone_mode=False,
    )


if __name__ == "__main__":
    main(sys.argv[1:])
