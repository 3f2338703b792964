"""heareval 2021.1.3's probe protocol without torch: grid, splits, selection, fold summary.

    from hearflow.probe.protocol import data_splits, expand_grid, task_grid
    points = expand_grid(task_grid({"hidden_dim": [256]}, metadata), seed=42, max_points=8)

Mirrors `heareval.predictions.task_predictions`:

- splits: `trainvaltest` is one split; k-fold modes rotate sorted folds (test = fold i,
  valid = fold i+1 mod k, train = the rest), as `data_splits_from_folds`.
- grid: `ParameterGrid` of the grid (sorted keys, last key fastest), shuffled with
  `random.Random(seed)` (heareval: `seed_everything(42)` then `random.shuffle`), first
  `max_grid_points` tried on the first split; the best by validation score is retrained
  on the other splits. Task overrides apply as in heareval (dcase2016_task2 validates
  every 10 epochs; `evaluation_params.task_specific_param_grid` in the metadata).
- result: every engine's result is `engine_result` over its `fold_result`s: metrics are
  the mean over splits, `metrics_std` the sample std (pandas), 0.0 for a single split.

DEFAULT_GRID is heareval's PARAM_GRID (tests/test_probe_protocol.py reads it from the
installed heareval's source); params.yaml's `probe.grid` only overrides it, key by key.
"""

from __future__ import annotations

import itertools
import random

DEFAULT_GRID: dict = {
    # heareval 2021.1.3 PARAM_GRID; classes are named by strings (GRID_CHOICES).
    "hidden_layers": [1, 2],
    "hidden_dim": [1024],
    "dropout": [0.1],
    "lr": [3.2e-3, 1e-3, 3.2e-4, 1e-4],
    "patience": [20],
    "max_epochs": [500],
    "check_val_every_n_epoch": [3],
    "batch_size": [1024],
    "hidden_norm": ["batchnorm"],
    "norm_after_activation": [False],
    # heareval builds this norm but never applies it (its forward comments it out).
    "embedding_norm": ["identity"],
    "initialization": ["xavier_uniform", "xavier_normal"],
    "optim": ["adam"],
    # Not in heareval, whose training batches always keep file order (see hearflow.probe.train).
    "shuffle_train": [False],
}
# The names a grid may give the torch classes and functions heareval's grid holds
# (hearflow.probe.stacked maps them to torch).
GRID_CHOICES = {
    "hidden_norm": ("batchnorm", "layernorm", "identity"),
    "initialization": ("xavier_uniform", "xavier_normal"),
    "optim": ("adam", "sgd"),
    "embedding_norm": ("identity",),
}
DEFAULT_EVENT_POSTPROCESSING = {"median_filter_ms": [250], "min_duration": [125, 250]}
# heareval's TASK_SPECIFIC_PARAM_GRID: sed_eval is slow, so dcase validates less often.
TASK_SPECIFIC_GRID = {"dcase2016_task2": {"check_val_every_n_epoch": [10]}}
RNG_MODES = ("per_point", "heareval")  # how a several-point grid draws its randomness (probe_task)


def data_splits(metadata: dict) -> list[dict[str, list[str]]]:
    """heareval's `get_splits_from_metadata`: [{"train": [...], "valid": [...], "test": [...]}]."""
    mode = metadata["split_mode"]
    if mode == "trainvaltest":
        return [{"train": ["train"], "valid": ["valid"], "test": ["test"]}]
    if mode not in ("presplit_kfold", "new_split_kfold"):
        raise ValueError(f"{metadata.get('task_name')}: unknown split_mode {mode!r}")
    folds = sorted(metadata["splits"])
    if len(folds) != len(set(folds)) or len(folds) < 3:
        raise ValueError(f"{metadata.get('task_name')}: k-fold needs at least 3 distinct folds, got {folds}")
    k = len(folds)
    return [
        {
            "train": [f for f in folds if f not in (folds[i], folds[(i + 1) % k])],
            "valid": [folds[(i + 1) % k]],
            "test": [folds[i]],
        }
        for i in range(k)
    ]


def task_grid(grid: dict | None, metadata: dict) -> dict[str, list]:
    """DEFAULT_GRID updated by `grid`, then by heareval's task-specific overrides."""
    final = {k: list(v) for k, v in DEFAULT_GRID.items()}
    overrides = [grid or {}, TASK_SPECIFIC_GRID.get(metadata["task_name"], {})]
    overrides.append(metadata.get("evaluation_params", {}).get("task_specific_param_grid", {}))
    for override in overrides:
        unknown = sorted(set(override) - set(DEFAULT_GRID))
        if unknown:
            raise ValueError(f"unknown grid keys {unknown}; known: {sorted(DEFAULT_GRID)}")
        final.update({k: list(v) if isinstance(v, list | tuple) else [v] for k, v in override.items()})
    for key, allowed in GRID_CHOICES.items():
        bad = [v for v in final[key] if v not in allowed]
        if bad:
            raise ValueError(f"grid {key}={bad}: expected values among {sorted(allowed)}")
    return final


def parameter_grid(grid: dict[str, list]) -> list[dict]:
    """The points of `grid` in the order of scikit-learn's ParameterGrid, which heareval
    iterates (sklearn/model_selection/_search.py: keys sorted, the product of their values,
    the last key varying fastest), without importing scikit-learn (0.7 s of a job's start);
    tests/test_probe_protocol.py checks the order against ParameterGrid itself."""
    keys = sorted(grid)
    return [dict(zip(keys, values)) for values in itertools.product(*(grid[k] for k in keys))]


def expand_grid(grid: dict[str, list], *, seed: int, max_points: int) -> list[dict]:
    """The grid points heareval tries: ParameterGrid order, shuffled by seed, first N."""
    points = parameter_grid(grid)
    random.Random(seed).shuffle(points)
    return points[:max_points]


def best_point(validation_scores: list[float], *, maximize: bool) -> int:
    """Index of the grid point heareval keeps: the best validation score, the first of equals."""
    return sorted(range(len(validation_scores)), key=lambda i: validation_scores[i], reverse=maximize)[0]


def fold_result(
    test: list[str],
    metrics: dict[str, float],
    *,
    best_epoch: int,
    validation_score: float,
    epochs: int | None = None,
    postprocessing: dict | None = None,
) -> dict:
    """One split's entry of an engine's "folds": its test splits and metrics, the kept epoch
    and its validation score; `epochs` trained and the event `postprocessing` where known."""
    fold: dict = {"test": test, "metrics": metrics}
    if epochs is not None:
        fold["epochs"] = epochs
    fold["best_epoch"] = best_epoch
    fold["validation_score"] = validation_score
    if postprocessing is not None:
        fold["postprocessing"] = postprocessing
    return fold


def engine_result(
    task: str,
    engine: str,
    seed: int,
    folds: list[dict],
    hparams: dict,
    *,
    grid_points: int | None = None,
    postprocessing: dict | None = None,
) -> dict:
    """What every probe engine returns, JSON-serialisable: {"task", "engine", "seed",
    "metrics": {metric: mean over splits}, "metrics_std": {metric: sample std, 0.0 for one
    split}, "folds" (fold_result), "hparams", "validation_score" (of the first split, where
    the grid search ran)(, "grid_points_tried")(, "postprocessing": event tasks)}."""
    import pandas as pd

    table = pd.DataFrame([f["metrics"] for f in folds])
    result = {
        "task": task,
        "engine": engine,
        "seed": seed,
        "metrics": {m: float(table[m].mean()) for m in table},
        "metrics_std": {m: float(table[m].std()) if len(folds) > 1 else 0.0 for m in table},
        "folds": folds,
        "hparams": hparams,
        "validation_score": folds[0]["validation_score"],
    }
    if grid_points is not None:
        result["grid_points_tried"] = grid_points
    if postprocessing is not None:
        result["postprocessing"] = postprocessing
    return result


def with_seeds(result: dict, seeds: list[int], per_seed: list[tuple[list[dict], list[dict]]]) -> dict:
    """An engine_result over several probe seeds. `per_seed`: each seed's (folds, replicates),
    replicates a list per fold of {metric: [value on each clip resample]} (empty: none). Adds
    "seeds" and "per_seed" ([{"seed", "metrics" (mean over folds), "replicates" (mean over
    folds of each resample)}]) and makes "metrics" the mean over seeds (NaN skipped, as over
    folds); a run of one seed without replicates is returned unchanged."""
    import numpy as np
    import pandas as pd

    if len(seeds) != len(per_seed):
        raise ValueError(f"{len(seeds)} seeds, {len(per_seed)} results")
    if len(seeds) == 1 and not per_seed[0][1]:
        return result
    entries = []
    for seed, (folds, replicates) in zip(seeds, per_seed, strict=True):
        table = pd.DataFrame([f["metrics"] for f in folds])
        entry: dict = {"seed": seed, "metrics": {m: float(table[m].mean()) for m in table}}
        if replicates:
            with np.errstate(all="ignore"):
                entry["replicates"] = {
                    m: [round(float(v), 6) for v in np.nanmean([r[m] for r in replicates], axis=0)]
                    for m in replicates[0]
                }
        entries.append(entry)
    means = pd.DataFrame([e["metrics"] for e in entries])
    result["metrics"] = {m: float(means[m].mean()) for m in means}
    result["seeds"] = list(seeds)
    result["per_seed"] = entries
    return result
