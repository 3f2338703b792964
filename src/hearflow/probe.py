"""HEAR's downstream probe, natively in torch, following heareval 2021.1.3.

    from hearflow.probe import probe_task
    result = probe_task(Path("embeddings/<model>/<task>"))          # heareval's grid
    result = probe_task(emb_dir, grid={"hidden_dim": [32], "max_epochs": [30]})

Mirrors `heareval.predictions.task_predictions` without pytorch-lightning:

- splits: `trainvaltest` is one split; k-fold modes rotate sorted folds (test = fold i,
  valid = fold i+1 mod k, train = the rest), as `data_splits_from_folds`.
- grid: `ParameterGrid` of the grid (sorted keys, last key fastest), shuffled with
  `random.Random(seed)` (heareval: `seed_everything(42)` then `random.shuffle`), first
  `max_grid_points` tried on the first split; the best by validation score is retrained
  on the other splits. Task overrides apply as in heareval (dcase2016_task2 validates
  every 10 epochs; `evaluation_params.task_specific_param_grid` in the metadata).
- model: `FullyConnectedPrediction` (Linear, norm, Dropout, ReLU per hidden layer, then a
  Linear projection; xavier init with the gain of the preceding activation), Adam,
  softmax + cross-entropy (multiclass) or sigmoid + BCE (multilabel, event).
- training: batches in file order, as in heareval (its DataLoader shuffles only when the
  split name equals "train", but it always passes a list; `shuffle_train: [True]` in the
  grid shuffles with a seeded `torch.Generator` instead); validation after epochs e with
  (e + 1) % check_val_every_n_epoch == 0 on the task's first `evaluation` score (val loss
  where `use_scoring_for_early_stopping` is false); Lightning's EarlyStopping (patience in
  validation checks, strict improvement, stop on a non-finite value) and ModelCheckpoint
  (first best kept); scores compared in float32 as Lightning logs them; the best
  checkpoint is restored for testing.
- events: frame probabilities per file -> median filter -> threshold 0.5 -> runs of
  consecutive frames -> events of at least `min_duration` ms; the post-processing point
  is chosen on validation at each check and the one of the best epoch is used on test.
- metrics: `heareval.score.available_scores`; a tuple score reports its first entry.

Deliberate differences (each a no-op on HEAR 2021's tasks, or where heareval fails):
- a last training batch of one row is skipped when BatchNorm is used (heareval crashes).
- event post-processing is chosen by the primary score's direction (heareval always takes
  the highest score, wrong only for a minimised primary score, which no task has).
- files with a single frame skip the median filter (heareval fails on them).
- test post-processing is the best epoch's, as heareval intends; under pytorch-lightning
  1.9.5 its `fit_loop.current_epoch = epoch` hack does not take and it fails (KeyError).
- `metrics_std` is the sample std over splits (pandas), 0.0 for a single split.
On CPU the scores equal heareval's (compared with heareval 2021.1.3 under
pytorch-lightning 1.9.5 on synthetic multiclass, k-fold multilabel and event tasks): the
torch RNG is seeded once per task and drawn where heareval draws it (see `_draw_seed`).
"""

from __future__ import annotations

import copy
import math
import random
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hearflow.hear import Task, read_embeddings, read_filename_timestamps, read_target_labels

DEFAULT_GRID: dict = {
    # heareval 2021.1.3 PARAM_GRID; classes are named by strings (see _HIDDEN_NORMS, ...).
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
    # Not in heareval, whose training batches always keep file order (see module doc).
    "shuffle_train": [False],
}
DEFAULT_EVENT_POSTPROCESSING = {"median_filter_ms": [250], "min_duration": [125, 250]}
# heareval's TASK_SPECIFIC_PARAM_GRID: sed_eval is slow, so dcase validates less often.
TASK_SPECIFIC_GRID = {"dcase2016_task2": {"check_val_every_n_epoch": [10]}}

_HIDDEN_NORMS = {
    "batchnorm": torch.nn.BatchNorm1d,
    "layernorm": torch.nn.LayerNorm,
    "identity": torch.nn.Identity,
}
_INITIALIZATIONS = {
    "xavier_uniform": torch.nn.init.xavier_uniform_,
    "xavier_normal": torch.nn.init.xavier_normal_,
}
_OPTIMIZERS = {"adam": torch.optim.Adam, "sgd": torch.optim.SGD}
_EVAL_CHUNK = 65536  # rows per forward pass at validation/test; eval mode is row-wise


# ------------------------------------------------------------------------ splits and grid


def data_splits(metadata: dict) -> list[dict[str, list[str]]]:
    """heareval's `get_splits_from_metadata`: [{"train": [...], "valid": [...], "test": [...]}]."""
    mode = metadata["split_mode"]
    if mode == "trainvaltest":
        return [{"train": ["train"], "valid": ["valid"], "test": ["test"]}]
    if mode not in ("presplit_kfold", "new_split_kfold"):
        raise ValueError(f"{metadata.get('task_name')}: unknown split_mode {mode!r}")
    folds = sorted(metadata["splits"])
    if len(folds) != len(set(folds)) or len(folds) < 3:
        raise ValueError(
            f"{metadata.get('task_name')}: k-fold needs at least 3 distinct folds, got {folds}"
        )
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
        final.update(
            {k: list(v) if isinstance(v, list | tuple) else [v] for k, v in override.items()}
        )
    checks = (
        ("hidden_norm", _HIDDEN_NORMS),
        ("initialization", _INITIALIZATIONS),
        ("optim", _OPTIMIZERS),
        ("embedding_norm", {"identity": None}),
    )
    for key, allowed in checks:
        bad = [v for v in final[key] if v not in allowed]
        if bad:
            raise ValueError(f"grid {key}={bad}: expected values among {sorted(allowed)}")
    return final


def expand_grid(grid: dict[str, list], *, seed: int, max_points: int) -> list[dict]:
    """The grid points heareval tries: ParameterGrid order, shuffled by seed, first N."""
    from sklearn.model_selection import ParameterGrid

    points = list(ParameterGrid(grid))
    random.Random(seed).shuffle(points)
    return points[:max_points]


# ------------------------------------------------------------------------ events


def events_from_frames(
    frame_probs: np.ndarray,
    timestamps_ms: np.ndarray,
    labels: list[str],
    *,
    threshold: float = 0.5,
    median_filter_ms: float,
    min_duration: float,
) -> list[dict]:
    """Frame probabilities [T, C] at timestamps [T] (ms) -> events of one file.

    As heareval's `create_events_from_prediction`: frames sorted by time (a repeated
    timestamp keeps its last frame), median filter of round(median_filter_ms / mean hop)
    frames per label, active where prob > threshold, each run of consecutive active frames
    becomes {"label", "start", "end"} (ms, first and last frame) if end - start >=
    min_duration. Events are sorted by start (ties: label order).
    """
    from scipy.ndimage import median_filter

    probs = np.asarray(frame_probs)
    times = np.asarray(timestamps_ms, dtype=np.float64)
    if probs.ndim != 2 or probs.shape != (len(times), len(labels)):
        raise ValueError(
            f"frame_probs must be [T={len(times)}, C={len(labels)}], got {probs.shape}"
        )
    order = np.argsort(times, kind="stable")
    times, probs = times[order], probs[order]
    last_of_time = np.append(times[1:] != times[:-1], True)
    times, probs = times[last_of_time], probs[last_of_time]
    if median_filter_ms and len(times) > 1:
        width = int(round(median_filter_ms / np.mean(np.diff(times))))
        if width:
            probs = median_filter(probs, size=(width, 1))
    active = probs > threshold
    events = []
    for c, label in enumerate(labels):
        idx = np.flatnonzero(active[:, c])
        if idx.size == 0:
            continue
        breaks = np.flatnonzero(np.diff(idx) != 1)
        starts = idx[np.r_[0, breaks + 1]]
        ends = idx[np.r_[breaks, idx.size - 1]]
        for s, e in zip(starts, ends, strict=True):
            if times[e] - times[s] >= min_duration:
                events.append({"label": label, "start": float(times[s]), "end": float(times[e])})
    events.sort(key=lambda ev: ev["start"])
    return events


def _file_frames(filenames: list[str]) -> dict[str, np.ndarray]:
    """Row indices of each file (keyed by basename, as heareval), in order of appearance."""
    slugs = [Path(f).name for f in filenames]
    uniq, first, inverse = np.unique(slugs, return_index=True, return_inverse=True)
    rows = np.argsort(inverse, kind="stable")
    bounds = np.cumsum(np.bincount(inverse, minlength=len(uniq)))[:-1]
    groups = dict(zip(uniq, np.split(rows, bounds), strict=True))
    return {str(uniq[i]): groups[uniq[i]] for i in np.argsort(first)}


# ------------------------------------------------------------------------ data


@dataclass
class _Split:
    """One training/evaluation set: rows of one or more heareval splits, on a device."""

    x: torch.Tensor  # [N, D] float32
    y: torch.Tensor  # [N, C] float32 multi-hot (one-hot for multiclass)
    files: dict[str, np.ndarray] | None = None  # event tasks: basename -> row indices
    times: np.ndarray | None = None  # event tasks: [N] ms
    targets: dict | None = None  # event tasks: {file: [{"label", "start", "end"}]}


class _Data:
    """Embeddings of a task loaded once per split; sets built from lists of split names."""

    def __init__(self, task: Task, emb_dir: Path, label_to_idx: dict[str, int], device):
        self.task, self.emb_dir, self.label_to_idx, self.device = (
            task,
            emb_dir,
            label_to_idx,
            device,
        )
        self._cache: dict[str, tuple] = {}
        self._sets: dict[tuple, _Split] = {}

    def _load(self, split: str) -> tuple:
        if split not in self._cache:
            x = read_embeddings(self.emb_dir, split)
            labels = read_target_labels(self.emb_dir, split)
            where = f"{self.emb_dir}/{split}"
            if len(labels) != len(x):
                raise ValueError(f"{where}: {len(labels)} label rows for {len(x)} embeddings")
            y = np.zeros((len(x), len(self.label_to_idx)), dtype=np.float32)
            rows = np.repeat(np.arange(len(labels)), [len(ls) for ls in labels])
            try:
                cols = [self.label_to_idx[str(label)] for ls in labels for label in ls]
            except KeyError as e:
                raise ValueError(f"{where}.target-labels.pkl: label {e} not in vocabulary") from e
            y[rows, np.asarray(cols, dtype=np.int64)] = 1.0
            if self.task.metadata["prediction_type"] == "multiclass":
                bad = np.flatnonzero(y.sum(axis=1) != 1)
                if bad.size:
                    raise ValueError(
                        f"{where}: multiclass rows need exactly one label; row {bad[0]} has "
                        f"{labels[bad[0]]}"
                    )
            files = times = None
            if self.task.is_event:
                stamps = read_filename_timestamps(self.emb_dir, split)
                if len(stamps) != len(x):
                    raise ValueError(f"{where}: {len(stamps)} timestamps for {len(x)} rows")
                files = [f for f, _ in stamps]
                times = np.array([t for _, t in stamps], dtype=np.float64)
            self._cache[split] = (torch.from_numpy(x), torch.from_numpy(y), files, times)
        return self._cache[split]

    def dims(self) -> int:
        sizes = {s: self._load(s)[0].shape[1] for s in self.task.splits}
        if len(set(sizes.values())) != 1:
            raise ValueError(f"{self.emb_dir}: embedding sizes differ across splits: {sizes}")
        return next(iter(sizes.values()))

    def build(self, splits: list[str], *, evaluate: bool) -> _Split:
        key = (tuple(splits), evaluate)
        if key not in self._sets:
            self._sets[key] = self._build(splits, evaluate=evaluate)
        return self._sets[key]

    def _build(self, splits: list[str], *, evaluate: bool) -> _Split:
        parts = [self._load(s) for s in splits]
        x = torch.cat([p[0] for p in parts]).to(self.device)
        y = torch.cat([p[1] for p in parts]).to(self.device)
        if not (evaluate and self.task.is_event):
            return _Split(x, y)
        targets: dict = {}
        for s in splits:
            targets.update(self.task.labels(s))
        filenames = [f for p in parts for f in p[2]]
        return _Split(x, y, _file_frames(filenames), np.concatenate([p[3] for p in parts]), targets)


# ------------------------------------------------------------------------ model


class FullyConnectedPrediction(torch.nn.Module):
    """heareval's predictor; `forward` returns logits."""

    def __init__(self, nfeatures: int, nlabels: int, conf: dict):
        super().__init__()
        init = _INITIALIZATIONS[conf["initialization"]]
        norm = _HIDDEN_NORMS[conf["hidden_norm"]]
        modules: list[torch.nn.Module] = []
        curdim, last_activation = nfeatures, "linear"
        for _ in range(conf["hidden_layers"]):
            linear = torch.nn.Linear(curdim, conf["hidden_dim"])
            init(linear.weight, gain=torch.nn.init.calculate_gain(last_activation))
            modules.append(linear)
            if not conf["norm_after_activation"]:
                modules.append(norm(conf["hidden_dim"]))
            modules.append(torch.nn.Dropout(conf["dropout"]))
            modules.append(torch.nn.ReLU())
            if conf["norm_after_activation"]:
                modules.append(norm(conf["hidden_dim"]))
            curdim, last_activation = conf["hidden_dim"], "relu"
        self.hidden = torch.nn.Sequential(*modules) if modules else torch.nn.Identity()
        self.projection = torch.nn.Linear(curdim, nlabels)
        init(self.projection.weight, gain=torch.nn.init.calculate_gain(last_activation))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.projection(self.hidden(x))


# ------------------------------------------------------------------------ training


def _primary(ret: Any) -> float:
    """A heareval score's value: the first entry of a tuple score."""
    return float(ret[0][1] if isinstance(ret, tuple) else ret)


@dataclass
class _Probe:
    """What one training run needs besides its data and grid point."""

    task: Task
    labels: list[str]
    scores: list
    use_scoring: bool
    postprocessing: list[dict]  # event tasks: candidate post-processing points
    generator: torch.Generator
    progress: bool

    @property
    def multiclass(self) -> bool:
        return self.task.metadata["prediction_type"] == "multiclass"

    def loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.multiclass:
            return torch.nn.functional.cross_entropy(logits, y.argmax(dim=1))
        return torch.nn.functional.binary_cross_entropy_with_logits(logits, y)

    def activate(self, logits: torch.Tensor) -> torch.Tensor:
        return torch.softmax(logits, dim=1) if self.multiclass else torch.sigmoid(logits)

    def events(self, probs: np.ndarray, data: _Split, post: dict) -> dict[str, list[dict]]:
        return {
            slug: events_from_frames(probs[rows], data.times[rows], self.labels, **post)
            for slug, rows in data.files.items()
        }

    def evaluate(self, probs: np.ndarray, data: _Split, scores: list, post: dict | None) -> dict:
        """{score name: primary value} of `scores` on one set."""
        if self.task.is_event:
            events = self.events(probs, data, post)
            return {str(s): _primary(s(events, data.targets)) for s in scores}
        y = data.y.cpu().numpy()
        return {str(s): _primary(s(probs, y)) for s in scores}

    def best_postprocessing(self, probs: np.ndarray, data: _Split) -> tuple[dict, float]:
        """heareval's validation choice: the point with the best primary score (NaN as 0;
        ties go to the larger point, as its reverse sort of (score, point) tuples)."""
        primary = self.scores[0]
        sign = 1.0 if primary.maximize else -1.0
        candidates = []
        for post in self.postprocessing:
            value = _primary(primary(self.events(probs, data, post), data.targets))
            rank = 0.0 if math.isnan(value) else value
            candidates.append((sign * rank, tuple(post.items()), value, post))
        best = max(candidates, key=lambda c: c[:2])
        return best[3], best[2]


@torch.no_grad()
def _logits(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    model.eval()
    return torch.cat([model(x[i : i + _EVAL_CHUNK]) for i in range(0, len(x), _EVAL_CHUNK)])


def _draw_seed() -> None:
    """Advance the torch RNG as a new DataLoader iterator does (it draws its base seed).

    heareval draws the global torch RNG outside the maths too: a random summary input
    after building each model, and one seed per DataLoader pass (every training epoch and
    every validation). Drawing at the same points keeps initialisations and dropout masks,
    hence scores, identical to heareval's on CPU.
    """
    torch.empty((), dtype=torch.int64).random_()


@dataclass
class _Run:
    model: torch.nn.Module
    validation_score: float
    best_epoch: int
    epochs: int
    postprocessing: dict | None


def _train(probe: _Probe, conf: dict, train: _Split, valid: _Split) -> _Run:
    """One heareval training run: fit, validate every n epochs, keep the best checkpoint."""
    model = FullyConnectedPrediction(train.x.shape[1], train.y.shape[1], conf).to(train.x.device)
    torch.rand(64, train.x.shape[1])  # heareval's torchinfo.summary input (see _draw_seed)
    optimizer = _OPTIMIZERS[conf["optim"]](model.parameters(), lr=conf["lr"])
    maximize = probe.use_scoring and probe.scores[0].maximize
    worst = -math.inf if maximize else math.inf

    def better(a: float, b: float) -> bool:
        return a > b if maximize else a < b

    skip_single = conf["hidden_norm"] == "batchnorm" and conf["hidden_layers"] > 0
    n, batch_size = len(train.x), conf["batch_size"]
    stop_best, wait = worst, 0
    best: _Run | None = None
    best_state: dict | None = None
    epoch = -1
    for epoch in range(conf["max_epochs"]):
        model.train()
        _draw_seed()  # heareval's training DataLoader iterator
        order = torch.randperm(n, generator=probe.generator) if conf["shuffle_train"] else None
        for start in range(0, n, batch_size):
            if skip_single and n - start == 1:
                break
            if order is None:
                xb, yb = train.x[start : start + batch_size], train.y[start : start + batch_size]
            else:
                idx = order[start : start + batch_size].to(train.x.device)
                xb, yb = train.x[idx], train.y[idx]
            loss = probe.loss(model(xb), yb)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        if (epoch + 1) % conf["check_val_every_n_epoch"]:
            continue
        _draw_seed()  # heareval's validation DataLoader iterator
        logits = _logits(model, valid.x)
        post = probe.postprocessing[0] if probe.task.is_event else None
        if not probe.use_scoring:
            value = float(probe.loss(logits, valid.y))
        elif probe.task.is_event:
            post, value = probe.best_postprocessing(probe.activate(logits).cpu().numpy(), valid)
        else:
            probs = probe.activate(logits).cpu().numpy()
            value = _primary(probe.scores[0](probs, valid.y.cpu().numpy()))
        value = float(np.float32(value))  # Lightning logs and compares float32 tensors
        checkpoint_value = worst if math.isnan(value) else value  # ModelCheckpoint's NaN rule
        if best is None or better(checkpoint_value, best.validation_score):
            best = _Run(model, checkpoint_value, epoch, 0, post)
            best_state = copy.deepcopy(model.state_dict())
        if probe.progress:
            print(f"  epoch {epoch}: validation {value:.4f}", file=sys.stderr)
        if not math.isfinite(value):
            break
        if better(value, stop_best):
            stop_best, wait = value, 0
        else:
            wait += 1
            if wait >= conf["patience"]:
                break
    if best is None:
        raise ValueError(
            f"{probe.task.name}: no validation ran (max_epochs={conf['max_epochs']} < "
            f"check_val_every_n_epoch={conf['check_val_every_n_epoch']}); raise max_epochs"
        )
    model.load_state_dict(best_state)
    best.epochs = epoch + 1
    return best


# ------------------------------------------------------------------------ entry point


def probe_task(
    emb_dir: Path,
    *,
    grid: dict | None = None,
    max_grid_points: int = 8,
    seed: int = 42,
    device: str | None = None,
    progress: bool = False,
) -> dict:
    """Train and test heareval's probe on one task's embeddings (heareval's format).

    `grid` updates DEFAULT_GRID key by key (a scalar is a one-value list). Returns
    {"task", "engine": "native", "seed", "metrics": {metric: mean over splits},
    "metrics_std": {metric: std}, "folds": [{"test", "metrics", "epochs", "best_epoch",
    "validation_score"(, "postprocessing")}], "hparams", "validation_score",
    "grid_points_tried"(, "postprocessing")}, JSON-serialisable.
    """
    import pandas as pd
    from heareval.score import available_scores, label_vocab_as_dict

    from hearflow.models.common import default_device

    emb_dir = Path(emb_dir)
    task = Task.load(emb_dir)
    metadata = task.metadata
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)

    labels = task.vocabulary()
    label_to_idx = label_vocab_as_dict(
        pd.DataFrame({"idx": range(len(labels)), "label": labels}), key="label", value="idx"
    )
    unknown = [m for m in metadata["evaluation"] if m not in available_scores]
    if unknown:
        raise ValueError(f"{emb_dir}: metrics {unknown} unknown to heareval.score")
    scores = [available_scores[m](label_to_idx=label_to_idx) for m in metadata["evaluation"]]
    use_scoring = metadata.get("use_scoring_for_early_stopping", True)
    postprocessing: list[dict] = []
    if task.is_event:
        from sklearn.model_selection import ParameterGrid

        post_grid = metadata.get("evaluation_params", {}).get(
            "event_postprocessing_grid", DEFAULT_EVENT_POSTPROCESSING
        )
        postprocessing = list(ParameterGrid(post_grid))
        if not use_scoring and len(postprocessing) != 1:
            raise ValueError(
                f"{emb_dir}: without use_scoring_for_early_stopping the event "
                f"post-processing grid must have one point, got {post_grid}"
            )
    probe = _Probe(
        task, labels, scores, use_scoring, postprocessing,
        torch.Generator().manual_seed(seed), progress,
    )  # fmt: skip
    data = _Data(task, emb_dir, label_to_idx, default_device(device))
    data.dims()
    splits = data_splits(metadata)
    points = expand_grid(task_grid(grid, metadata), seed=seed, max_points=max_grid_points)

    def fit(conf: dict, split: dict) -> _Run:
        return _train(
            probe,
            conf,
            data.build(split["train"], evaluate=False),
            data.build(split["valid"], evaluate=True),
        )

    runs = []
    for i, conf in enumerate(points):
        runs.append((fit(conf, splits[0]), conf))
        if progress:
            print(f"{task.name} grid {i + 1}/{len(points)} {conf}: "
                  f"{runs[-1][0].validation_score:.4f}", file=sys.stderr)  # fmt: skip
    maximize = use_scoring and scores[0].maximize
    order = sorted(range(len(runs)), key=lambda i: runs[i][0].validation_score, reverse=maximize)
    best_run, best_conf = runs[order[0]]
    split_runs = [best_run] + [fit(best_conf, split) for split in splits[1:]]

    folds = []
    for split, run in zip(splits, split_runs, strict=True):
        test = data.build(split["test"], evaluate=True)
        probs = probe.activate(_logits(run.model, test.x)).cpu().numpy()
        fold = {
            "test": split["test"],
            "metrics": probe.evaluate(probs, test, scores, run.postprocessing),
            "epochs": run.epochs,
            "best_epoch": run.best_epoch,
            "validation_score": run.validation_score,
        }
        if task.is_event:
            fold["postprocessing"] = run.postprocessing
        folds.append(fold)
        if progress:
            print(f"{task.name} test {split['test']}: {fold['metrics']}", file=sys.stderr)

    table = pd.DataFrame([f["metrics"] for f in folds])
    result = {
        "task": task.name,
        "engine": "native",
        "seed": seed,
        "metrics": {m: float(table[m].mean()) for m in table},
        "metrics_std": {m: float(table[m].std()) if len(folds) > 1 else 0.0 for m in table},
        "folds": folds,
        "hparams": dict(best_conf),
        "validation_score": best_run.validation_score,
        "grid_points_tried": len(points),
    }
    if task.is_event:
        result["postprocessing"] = best_run.postprocessing
    return result
