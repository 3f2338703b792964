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
- grid points are trained together: on CUDA (when present) points that share the network
  shape and batches (`_STACK_KEYS`) form one `StackedMLP` (weights [G, in, out], batched
  matmuls, per-member BatchNorm/LayerNorm/dropout/loss, Adam with one learning rate per
  member), and each member keeps its own schedule below and leaves the stack when it
  stops. On the CPU, where stacking saves no arithmetic, each point trains alone in one
  thread, and the points (then the re-trainings on the other folds) are shared by up to
  `workers` forked processes (default: the job's thread count). Each point of a several-
  point grid has its own seeds (`member_seeds`), so its run does not depend on the others
  or on the worker count; dropout masks come from `bernoulli_keep` (exact Bernoulli from
  8 random bits per entry: torch's CPU dropout spends 32), and their linear layers
  multiply through oneDNN (`_Linear`: MKL's sgemm, torch.matmul's CPU kernel, takes no
  AVX-512 path on AMD processors). A forked worker's runs come back through a pipe that
  this process drains while it trains. glibc is told to keep freed memory
  (`keep_freed_memory`).
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
  1.9.5 its `fit_loop.current_epoch = epoch` hack does not take and it fails (KeyError;
  probe.engine heareval restores the setter, see hearflow/heareval_launch.py).
- `metrics_std` is the sample std over splits (pandas), 0.0 for a single split.

A one-point grid (and its re-trainings on the other folds) draws the global torch RNG
where heareval draws it (see `_draw_seed`) and uses torch's dropout: on CPU it trains
heareval's model, with the same best epochs and scores equal up to float rounding
(tests/test_probe_engines.py runs heareval 2021.1.3 under pytorch-lightning 1.9.5 on
k-fold multilabel and event tasks). Grids of several points draw from the points' own
seeds, so their scores differ from heareval's as another seed's would; with
`rng="heareval"` they train one after another on the global RNG as heareval's loop does,
and tests/test_heareval_oracle.py checks that the whole grid search then picks heareval's
point.
"""

from __future__ import annotations

import functools
import math
import random
import sys
import threading
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
RNG_MODES = ("per_point", "heareval")  # how a several-point grid draws its randomness (probe_task)

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
    """heareval's predictor; `forward` returns logits. Initialises the members of StackedMLP."""

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


# Grid keys that fix a network's shape and its batches: points that share them train
# together in one StackedMLP. The others (lr, initialization, patience, max_epochs,
# check_val_every_n_epoch) may differ between the members of one stack.
_STACK_KEYS = (
    "hidden_layers", "hidden_dim", "hidden_norm", "norm_after_activation", "dropout",
    "batch_size", "optim", "shuffle_train", "embedding_norm",
)  # fmt: skip


def bernoulli_keep(shape: tuple[int, ...], p: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """A bool mask of `shape` on the generator's device, each entry False (dropped) with
    probability `p`.

    On the CPU, an exact Bernoulli(p) from about 8 random bits per entry instead of the 32
    of torch's dropout (one mt19937 word per entry, the slowest step of a training step on
    the CPU): a random byte b drops below floor(256 p) and keeps above it; on the boundary
    byte (1 entry in 256) a float64 uniform decides with the remaining fraction, so
    P(drop) = floor(256 p) / 256 + frac(256 p) / 256 = p. Elsewhere: uniform >= p.
    """
    if not 0.0 <= p < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {p}")
    device = generator.device if generator is not None else torch.device("cpu")
    if device.type != "cpu":
        return torch.rand(shape, generator=generator, device=device) >= p
    numel = math.prod(shape)
    words = torch.empty((numel + 7) // 8, dtype=torch.int64)
    random_bytes = words.random_(-(2**63), None, generator=generator).numpy().view(np.uint8)[:numel]
    level = 256.0 * p
    floor = int(level)
    keep = random_bytes >= floor  # numpy: torch's bool-valued comparisons are ~10x slower here
    if level > floor:
        boundary = np.flatnonzero(random_bytes == floor)
        uniform = torch.rand(len(boundary), dtype=torch.float64, generator=generator)
        keep[boundary] = uniform.numpy() >= level - floor
    return torch.from_numpy(keep.reshape(shape))


class _DropoutReLU(torch.autograd.Function):
    """relu(dropout(h)) with a given keep mask: h * (keep & (h > 0)) / (1 - p), one saved mask."""

    @staticmethod
    def forward(ctx, h: torch.Tensor, keep: torch.Tensor, scale: float) -> torch.Tensor:
        if h.device.type == "cpu":  # the mask in numpy, as in bernoulli_keep
            active = np.logical_and(keep.numpy(), h.detach().numpy() > 0)
            mask = torch.from_numpy(np.multiply(active, np.float32(scale), dtype=np.float32))
        else:
            mask = (keep & (h > 0)).to(h.dtype).mul_(scale)
        ctx.save_for_backward(mask)
        return h * mask

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (mask,) = ctx.saved_tensors
        return grad * mask, None, None


@functools.cache
def _onednn_linear():
    """torch's oneDNN (mkldnn) linear on dense CPU tensors, or None where this torch has
    none (probed on first use).

    `op(x [N, I], w [O, I], b [O] or None)` = x @ w.T + b. MKL's sgemm (torch.matmul on the
    CPU) takes no AVX-512 path on AMD processors; oneDNN's JIT kernels do: twice the rate
    of a [1024, 256] x [256, 256] product on this project's 2-core AMD EPYC machine
    (benchmarks/probe_engines.py). Strided operands are accepted, so transposes are views.
    """
    if not torch.backends.mkldnn.is_available():
        return None
    op = getattr(getattr(torch.ops, "mkldnn", None), "_linear_pointwise", None)
    if op is None:
        return None
    try:
        x, w = torch.ones(2, 3), torch.ones(4, 3)
        if not torch.equal(op(x, w, None, "none", [], ""), torch.full((2, 4), 3.0)):
            return None
    except RuntimeError:
        return None
    return lambda a, m, bias: op(a, m, bias, "none", [], "")


class _Linear(torch.autograd.Function):
    """x @ w + b for x [N, I], w [I, O], b [O] through oneDNN, forward and backward (its
    products: dx = g @ w.T, dw = x.T @ g); the input gradient only where x needs one."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x, w)
        return _onednn_linear()(x, w.t(), b)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        x, w = ctx.saved_tensors
        linear = _onednn_linear()
        dx = linear(grad, w, None) if ctx.needs_input_grad[0] else None
        return dx, linear(x.t(), grad.t(), None), grad.sum(0)


def member_seeds(seed: int, count: int, *, stage: int = 0) -> list[tuple[int, int]]:
    """(initialisation seed, dropout seed) of members 0 .. count-1 of a run seeded `seed`:
    stage 0 the grid points, stage k the re-training on split k."""
    states = [np.random.SeedSequence([seed, stage, i]).generate_state(2) for i in range(count)]
    return [(int(init), int(drop)) for init, drop in states]


class StackedMLP:
    """G FullyConnectedPredictions of one shape as stacked tensors, trained as one model.

    Member g is built (and so initialised) by FullyConnectedPrediction from its own conf,
    then its weights are stacked: linear weights [G, in, out], biases and norm parameters
    [G, out]. `forward(x [N, D])` -> logits [G, N, C]. Members share only the input batch:
    BatchNorm statistics, LayerNorm, dropout masks and the loss are per member, so the
    gradient of the summed member losses is each member's own gradient.

    Random draws: `build(..., seeds=None)` makes one member that draws the global torch
    RNG where heareval does (torch's dropout). With `seeds` [(init, dropout)] per member,
    each member is initialised under its init seed and draws its dropout masks
    (bernoulli_keep) from a generator of its own: a member then trains the same whichever
    members share its stack, up to float rounding (which Adam amplifies on a bias right
    before BatchNorm: its gradient is zero up to rounding, and so are heareval's).
    """

    def __init__(
        self, params: dict[str, torch.Tensor], buffers: dict[str, torch.Tensor], conf: dict,
        *, generators: list[torch.Generator] | None = None,
    ):  # fmt: skip
        self.params, self.buffers, self.conf = params, buffers, conf
        self.generators = generators  # None: the global RNG (one member); else per member
        self.training = True

    @classmethod
    def build(
        cls, nfeatures: int, nlabels: int, confs: list[dict], device,
        seeds: list[tuple[int, int]] | None = None,
    ) -> "StackedMLP":  # fmt: skip
        if seeds is None and len(confs) != 1:
            raise ValueError("a stack of several members needs member seeds (see member_seeds)")
        if seeds is not None and len(seeds) != len(confs):
            raise ValueError(f"{len(seeds)} member seeds for {len(confs)} members")
        params: dict[str, list] = {}
        buffers: dict[str, list] = {}
        for j, conf in enumerate(confs):
            if seeds is None:
                member = FullyConnectedPrediction(nfeatures, nlabels, conf)
                torch.rand(64, nfeatures)  # heareval's torchinfo.summary input (see _draw_seed)
            else:
                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(seeds[j][0])
                    member = FullyConnectedPrediction(nfeatures, nlabels, conf)
            hidden = list(member.hidden.modules())
            linears = [m for m in hidden if isinstance(m, torch.nn.Linear)] + [member.projection]
            norms = [m for m in hidden if isinstance(m, torch.nn.BatchNorm1d | torch.nn.LayerNorm)]
            for i, linear in enumerate(linears):
                params.setdefault(f"w{i}", []).append(linear.weight.detach().T)
                params.setdefault(f"b{i}", []).append(linear.bias.detach())
            for i, norm in enumerate(norms):
                params.setdefault(f"g{i}", []).append(norm.weight.detach())
                params.setdefault(f"beta{i}", []).append(norm.bias.detach())
                if isinstance(norm, torch.nn.BatchNorm1d):
                    buffers.setdefault(f"mean{i}", []).append(norm.running_mean)
                    buffers.setdefault(f"var{i}", []).append(norm.running_var)
        stack = lambda ts: torch.stack(ts).contiguous().to(device)  # noqa: E731
        return cls(
            {k: stack(v).requires_grad_() for k, v in params.items()},
            {k: stack(v) for k, v in buffers.items()},
            confs[0],
            generators=None if seeds is None else [
                torch.Generator(device=device).manual_seed(drop) for _, drop in seeds
            ],
        )  # fmt: skip

    @property
    def size(self) -> int:
        return len(self.params["w0"])

    def select(self, members: list[int]) -> "StackedMLP":
        """A copy holding only `members` (positions in this stack)."""
        idx = torch.as_tensor(members, device=self.params["w0"].device)
        return StackedMLP(
            {k: v.detach()[idx].clone().requires_grad_() for k, v in self.params.items()},
            {k: v[idx].clone() for k, v in self.buffers.items()},
            self.conf,
            generators=None if self.generators is None else [self.generators[m] for m in members],
        )

    def _norm(self, h: torch.Tensor, i: int) -> torch.Tensor:
        g, beta = self.params[f"g{i}"], self.params[f"beta{i}"]
        if self.conf["hidden_norm"] == "layernorm":
            return torch.nn.functional.layer_norm(h, h.shape[-1:]) * g[:, None, :] + beta[:, None, :]
        size, n, dim = h.shape
        flat = h.transpose(0, 1).reshape(n, size * dim)  # [N, G*H]: one BatchNorm feature per member unit
        out = torch.nn.functional.batch_norm(
            flat,
            self.buffers[f"mean{i}"].view(-1),  # views: running statistics update in place
            self.buffers[f"var{i}"].view(-1),
            g.view(-1),  # the affine step in the kernel, as BatchNorm1d
            beta.view(-1),
            training=self.training,
        )
        return out.reshape(n, size, dim).transpose(0, 1)

    def _dropout_relu(self, h: torch.Tensor) -> torch.Tensor:
        p = self.conf["dropout"]
        if self.generators is None or not self.training or p == 0:
            return torch.relu(torch.nn.functional.dropout(h, p, self.training))
        keep = torch.stack([bernoulli_keep(tuple(h.shape[1:]), p, g) for g in self.generators])
        return _DropoutReLU.apply(h, keep, 1.0 / (1.0 - p))

    def _linear(self, h: torch.Tensor, i: int) -> torch.Tensor:
        """h [G, N, I] (or [N, I]) times layer i's weights plus its bias: [G, N, O]."""
        w, b = self.params[f"w{i}"], self.params[f"b{i}"]
        if self.generators is not None and self.size == 1 and h.device.type == "cpu" and _onednn_linear():
            # A seeded member on the CPU (a grid point of its own): oneDNN's products. A
            # one-point grid keeps torch.matmul, the kernels of heareval's nn.Linear.
            return _Linear.apply(h.reshape(-1, h.shape[-1]), w[0], b[0])[None]
        return torch.matmul(h, w) + b[:, None, :]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        conf, norm = self.conf, self.conf["hidden_norm"] != "identity"
        h = x
        for i in range(conf["hidden_layers"]):
            h = self._linear(h, i)  # [G, N, H]
            if norm and not conf["norm_after_activation"]:
                h = self._norm(h, i)
            h = self._dropout_relu(h)
            if norm and conf["norm_after_activation"]:
                h = self._norm(h, i)
        last = conf["hidden_layers"]
        if h.dim() == 2 and self.size > 1:  # no hidden layer: every member sees the input
            h = h.expand(self.size, *h.shape)
        return self._linear(h, last)

    @torch.no_grad()
    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Evaluation-mode logits [G, N, C], in chunks of rows (evaluation is row-wise)."""
        self.training = False
        out = torch.cat([self.forward(x[i : i + _EVAL_CHUNK]) for i in range(0, len(x), _EVAL_CHUNK)], 1)
        self.training = True
        return out


class _StackedOptimizer:
    """torch.optim.Adam / SGD (defaults: betas 0.9/0.999, eps 1e-8, no weight decay, no
    momentum) with one learning rate per member: the update of torch's single-tensor
    implementations, with lr a [G] tensor broadcast over each member's slice."""

    def __init__(self, model: StackedMLP, lrs: list[float], optim: str):
        self.model, self.optim, self.step_count = model, optim, 0
        self.lr = torch.tensor(lrs, dtype=torch.float32, device=model.params["w0"].device)
        self.state = {
            k: (torch.zeros_like(p), torch.zeros_like(p)) for k, p in model.params.items()
        } if optim == "adam" else {}  # fmt: skip

    def select(self, model: StackedMLP, members: list[int]) -> None:
        idx = torch.as_tensor(members, device=self.lr.device)
        self.model, self.lr = model, self.lr[idx]
        self.state = {k: (m[idx].clone(), v[idx].clone()) for k, (m, v) in self.state.items()}

    @torch.no_grad()
    def step(self) -> None:
        self.step_count += 1
        beta1, beta2, eps = 0.9, 0.999, 1e-8
        for k, p in self.model.params.items():
            lr = self.lr.view(-1, *[1] * (p.dim() - 1))
            if self.optim == "sgd":
                p.sub_(lr * p.grad)
            else:
                exp_avg, exp_avg_sq = self.state[k]
                exp_avg.lerp_(p.grad, 1 - beta1)
                exp_avg_sq.mul_(beta2).addcmul_(p.grad, p.grad, value=1 - beta2)
                step_size = lr / (1 - beta1**self.step_count)
                denom = (exp_avg_sq.sqrt() / math.sqrt(1 - beta2**self.step_count)).add_(eps)
                p.sub_(step_size * exp_avg / denom)
            p.grad = None


# ------------------------------------------------------------------------ training


def _primary(ret: Any) -> float:
    """A heareval score's value: the first entry of a tuple score."""
    return float(ret[0][1] if isinstance(ret, tuple) else ret)


@dataclass
class _Probe:
    """What one training run needs besides its data and grid points."""

    task: Task
    labels: list[str]
    scores: list
    use_scoring: bool
    postprocessing: list[dict]  # event tasks: candidate post-processing points
    generator: torch.Generator  # batch order of one-member runs (shuffle_train)
    progress: bool
    seed: int

    @property
    def multiclass(self) -> bool:
        return self.task.metadata["prediction_type"] == "multiclass"

    def loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Per-member mean loss [G] of logits [G, N, C] against targets [N, C]."""
        size, n, c = logits.shape
        if self.multiclass:
            target = y.argmax(dim=1).repeat(size)
            flat = torch.nn.functional.cross_entropy(logits.reshape(-1, c), target, reduction="none")
            return flat.view(size, n).mean(dim=1)
        full = torch.nn.functional.binary_cross_entropy_with_logits(
            logits, y.expand(size, n, c), reduction="none"
        )
        return full.mean(dim=(1, 2))

    def activate(self, logits: torch.Tensor) -> torch.Tensor:
        return torch.softmax(logits, dim=-1) if self.multiclass else torch.sigmoid(logits)

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

    def validate(self, logits: torch.Tensor, valid: _Split) -> tuple[float, dict | None]:
        """One member's validation value (as Lightning logs it: float32) and, for event
        tasks, the post-processing point it was reached with."""
        post = self.postprocessing[0] if self.task.is_event else None
        if not self.use_scoring:
            value = float(self.loss(logits[None], valid.y)[0])
        elif self.task.is_event:
            post, value = self.best_postprocessing(self.activate(logits).cpu().numpy(), valid)
        else:
            probs = self.activate(logits).cpu().numpy()
            value = _primary(self.scores[0](probs, valid.y.cpu().numpy()))
        return float(np.float32(value)), post


def _draw_seed() -> None:
    """Advance the torch RNG as a new DataLoader iterator does (it draws its base seed).

    heareval draws the global torch RNG outside the maths too: a random summary input
    after building each model, and one seed per DataLoader pass (every training epoch and
    every validation). Drawing at the same points keeps a single-point run's
    initialisation and dropout draws in heareval's order.
    """
    torch.empty((), dtype=torch.int64).random_()


@dataclass
class _Run:
    model: StackedMLP  # one member: the best checkpoint
    validation_score: float
    best_epoch: int
    epochs: int
    postprocessing: dict | None


@dataclass
class _Member:
    """Early stopping and checkpoint state of one member (Lightning's callbacks)."""

    conf: dict
    stop_best: float
    wait: int = 0
    best: _Run | None = None


def _train(
    probe: _Probe, confs: list[dict], train: _Split, valid: _Split,
    seeds: list[tuple[int, int]] | None = None,
) -> list[_Run]:  # fmt: skip
    """heareval training runs of grid points that share `_STACK_KEYS`, as one StackedMLP.

    Each member keeps heareval's schedule: validation after epochs e with
    (e + 1) % check_val_every_n_epoch == 0, Lightning's EarlyStopping (patience in
    validation checks, strict improvement, stop on a non-finite value) and ModelCheckpoint
    (first best kept). A member leaves the stack when it stops; the rest train on.
    `seeds=None`: one member on the global torch RNG, drawn where heareval draws it; with
    member seeds (StackedMLP.build) the global RNG is not touched, and batches are shuffled
    (shuffle_train) by a generator seeded with the run's seed alone, the same for every stack.
    """
    shared = {k: confs[0][k] for k in _STACK_KEYS}
    if any({k: c[k] for k in _STACK_KEYS} != shared for c in confs):
        raise ValueError(f"grid points of one stack must share {_STACK_KEYS}")
    model = StackedMLP.build(train.x.shape[1], train.y.shape[1], confs, train.x.device, seeds)
    heareval_draws = seeds is None
    shuffle = probe.generator if heareval_draws else torch.Generator().manual_seed(probe.seed)
    optimizer = _StackedOptimizer(model, [c["lr"] for c in confs], shared["optim"])
    maximize = probe.use_scoring and probe.scores[0].maximize
    worst = -math.inf if maximize else math.inf

    def better(a: float, b: float) -> bool:
        return a > b if maximize else a < b

    members = [_Member(conf, worst) for conf in confs]
    alive = list(range(len(confs)))  # member index of each stack position
    skip_single = shared["hidden_norm"] == "batchnorm" and shared["hidden_layers"] > 0
    n, batch_size = len(train.x), shared["batch_size"]
    for epoch in range(max(c["max_epochs"] for c in confs)):
        if heareval_draws:
            _draw_seed()  # heareval's training DataLoader iterator
        order = torch.randperm(n, generator=shuffle) if shared["shuffle_train"] else None
        for start in range(0, n, batch_size):
            if skip_single and n - start == 1:
                break
            if order is None:
                xb, yb = train.x[start : start + batch_size], train.y[start : start + batch_size]
            else:
                idx = order[start : start + batch_size].to(train.x.device)
                xb, yb = train.x[idx], train.y[idx]
            probe.loss(model.forward(xb), yb).sum().backward()
            optimizer.step()
        due = [p for p, m in enumerate(alive) if (epoch + 1) % members[m].conf["check_val_every_n_epoch"] == 0]
        stopped = set()
        if due:
            if heareval_draws:
                _draw_seed()  # heareval's validation DataLoader iterator
            logits = model.logits(valid.x)  # [G, N, C]
        for p in due:
            member = members[alive[p]]
            value, post = probe.validate(logits[p], valid)
            checkpoint_value = worst if math.isnan(value) else value  # ModelCheckpoint's NaN rule
            if member.best is None or better(checkpoint_value, member.best.validation_score):
                member.best = _Run(model.select([p]), checkpoint_value, epoch, 0, post)
            if probe.progress:
                print(f"  point {alive[p]} epoch {epoch}: validation {value:.4f}", file=sys.stderr)
            if not math.isfinite(value):
                stopped.add(p)
            elif better(value, member.stop_best):
                member.stop_best, member.wait = value, 0
            else:
                member.wait += 1
                if member.wait >= member.conf["patience"]:
                    stopped.add(p)
        stopped |= {p for p, m in enumerate(alive) if epoch + 1 >= members[m].conf["max_epochs"]}
        for p in stopped:
            member = members[alive[p]]
            if member.best is None:
                raise ValueError(
                    f"{probe.task.name}: no validation ran (max_epochs={member.conf['max_epochs']}"
                    f" < check_val_every_n_epoch={member.conf['check_val_every_n_epoch']}); "
                    "raise max_epochs"
                )
            member.best.epochs = epoch + 1
        if stopped:
            keep = [p for p in range(len(alive)) if p not in stopped]
            if not keep:
                break
            model = model.select(keep)
            optimizer.select(model, keep)
            alive = [alive[p] for p in keep]
    return [m.best for m in members]


class _Trainer:
    """Training runs of a task's grid points and re-trainings, here and in forked processes.

    A job is (split index, grid points, member seeds or None); `run` returns each job's
    runs in order. On the CPU every job runs in one thread. With `workers` > 1 (CPU only,
    where fork exists) this process and min(workers, jobs) - 1 forked ones take the jobs
    one at a time, largest first, from a shared counter, unless the jobs' arithmetic is
    under _FORK_MIN_FLOPS (then a fork costs more than it saves); the forks share the loaded
    embeddings copy-on-write (nothing is pickled on the way in) and send their runs back
    as numpy arrays. A one-point grid and its re-trainings run here on every thread,
    drawing the global RNG as heareval (`fit` with seeds None).
    """

    def __init__(self, probe: _Probe, data: _Data, splits: list[dict], workers: int, rng: str = "per_point"):
        if rng not in RNG_MODES:
            raise ValueError(f"rng must be one of {RNG_MODES}, got {rng!r}")
        self.probe, self.data, self.splits, self.rng = probe, data, splits, rng
        self.workers = workers if data.device.type == "cpu" and _can_fork() else 1

    def flops(self, split: int, confs: list[dict]) -> float:
        """Training arithmetic of a job if no member stops early: 6 flops per weight, row
        and epoch (forward and backward)."""
        train = self.data.build(self.splits[split]["train"], evaluate=False)
        rows, dims, labels = train.x.shape[0], train.x.shape[1], train.y.shape[1]
        total = 0.0
        for c in confs:
            widths = [dims] + [c["hidden_dim"]] * c["hidden_layers"] + [labels]
            total += 6.0 * rows * c["max_epochs"] * sum(a * b for a, b in zip(widths, widths[1:]))
        return total

    def fit(self, split: int, confs: list[dict], seeds: list | None) -> list[_Run]:
        train = self.data.build(self.splits[split]["train"], evaluate=False)
        valid = self.data.build(self.splits[split]["valid"], evaluate=True)
        return _train(self.probe, confs, train, valid, seeds)

    def run(self, jobs: list[tuple[int, list[dict], list | None]]) -> list[list[_Run]]:
        """Runs of each job (jobs with member seeds). On the CPU each job runs in one
        thread, here or in a fork, so that kernels and rounding are the same either way."""
        if self.data.device.type != "cpu":
            return [self.fit(*job) for job in jobs]
        cost = [self.flops(split, confs) for split, confs, _ in jobs]
        order = sorted(range(len(jobs)), key=lambda k: -cost[k])
        forks = min(self.workers, len(jobs)) - 1 if sum(cost) >= _FORK_MIN_FLOPS else 0
        import multiprocessing

        context = multiprocessing.get_context("fork") if forks > 0 else None
        taken = context.Value("i", 0) if context else None
        children, receivers = [], []
        packed: dict[int, list[dict]] = {}
        errors: list[str] = []
        threads = torch.get_num_threads()
        collector = None
        try:
            for _ in range(forks):
                receive, send = context.Pipe(duplex=False)
                child = context.Process(target=_work_forked, args=(self, jobs, order, taken, send), daemon=True)
                child.start()
                send.close()
                children.append(child)
                receivers.append(receive)
            if receivers:
                # Drain the pipes while this process trains: a run is larger than a pipe's
                # buffer, and a worker blocked in send() would take no further job.
                collector = threading.Thread(target=_collect, args=(receivers, packed, errors), daemon=True)
                collector.start()
            torch.set_num_threads(1)
            results: dict[int, list[_Run]] = {}
            for k in _take(order, taken):
                if errors:
                    break
                results[k] = self.fit(*jobs[k])
            if collector is not None and not errors:
                collector.join()
            if errors:
                raise RuntimeError(f"a probe worker failed:\n{errors[0]}")
            for child in children:
                child.join()
                if child.exitcode != 0:
                    raise RuntimeError(f"a probe worker exited with code {child.exitcode}")
            for k, runs in packed.items():
                results[k] = [_unpack_run(run, self.data.device) for run in runs]
        finally:
            torch.set_num_threads(threads)
            for child in children:
                if child.is_alive():
                    child.terminate()
                child.join()
            if collector is not None:
                collector.join()
        return [results[k] for k in range(len(jobs))]

    def train_grid(self, confs: list[dict]) -> list[_Run]:
        """Runs of every grid point on the first split, in order.

        One point trains alone on the global RNG, as heareval. Several points get member
        seeds (member_seeds: by grid position), so a point's run does not depend on its
        company. On CUDA, points that share `_STACK_KEYS` train together in one StackedMLP
        (one device filled instead of several left idle). On the CPU each point trains
        alone, single-threaded, here or in a worker: stacking saves no arithmetic on a CPU
        (about 10% of per-operation overhead on the demo tasks), and single points keep the
        result exactly the same whatever the thread count and balance the workers.
        """
        if len(confs) == 1 or self.rng == "heareval":  # one after the other, heareval's draws
            return [self.fit(0, [conf], None)[0] for conf in confs]
        seeds = member_seeds(self.probe.seed, len(confs))
        if self.data.device.type == "cpu":
            groups = [[i] for i in range(len(confs))]
        else:
            stacks: dict[tuple, list[int]] = {}
            for i, conf in enumerate(confs):
                stacks.setdefault(tuple(repr(conf[k]) for k in _STACK_KEYS), []).append(i)
            groups = list(stacks.values())
        jobs = [(0, [confs[i] for i in g], [seeds[i] for i in g]) for g in groups]
        runs: list = [None] * len(confs)
        for group, group_runs in zip(groups, self.run(jobs), strict=True):
            for i, run in zip(group, group_runs, strict=True):
                runs[i] = run
        return runs

    def retrain(self, conf: dict, *, grid_size: int) -> list[_Run]:
        """The chosen point trained on splits 1 .. k-1: on the global RNG one after the
        other after a one-point grid (heareval's draws), else each with seeds of its own
        (member_seeds of the split), so the re-trainings run in parallel."""
        splits = range(1, len(self.splits))
        if grid_size == 1 or self.rng == "heareval":
            return [self.fit(split, [conf], None)[0] for split in splits]
        jobs = [(split, [conf], member_seeds(self.probe.seed, 1, stage=split)) for split in splits]
        return [runs[0] for runs in self.run(jobs)]


# Below this much training arithmetic the jobs run here one after the other: a fork and its
# first copy-on-write page faults cost some 30 ms here, and 5 GFLOP of small layers is about
# 0.15 s of one core (on the demo, vowels' 2 GFLOP grid is faster in one process, tones' 10
# and mixtures' 7 are faster forked).
_FORK_MIN_FLOPS = 5e9


def _can_fork() -> bool:
    import multiprocessing

    return "fork" in multiprocessing.get_all_start_methods()


def _take(order: list[int], taken) -> Any:
    """Job indices from `order`, one at a time, shared through the counter `taken` (None:
    this process alone)."""
    if taken is None:
        yield from order
        return
    while True:
        with taken.get_lock():
            index = taken.value
            taken.value += 1
        if index >= len(order):
            return
        yield order[index]


def _collect(receivers: list, packed: dict, errors: list) -> None:
    """Messages of forked workers until every pipe is closed: runs into `packed` by job
    index, tracebacks into `errors` (a thread of `_Trainer.run`)."""
    from multiprocessing.connection import wait

    pending = list(receivers)
    while pending:
        for receive in wait(pending):
            try:
                message = receive.recv()
            except EOFError:
                pending.remove(receive)
                continue
            if message[0] == "error":
                errors.append(message[1])
            else:
                packed[message[0]] = message[1]


def _work_forked(trainer: _Trainer, jobs: list, order: list[int], taken, send) -> None:
    """A forked worker of `_Trainer.run`: jobs until none is left, runs sent as arrays."""
    # One thread: GNU OpenMP (torch's CPU backend) deadlocks in a forked child that opens a
    # parallel region after its parent has used one.
    torch.set_num_threads(1)
    try:
        for k in _take(order, taken):
            send.send((k, [_pack_run(run) for run in trainer.fit(*jobs[k])]))
    except BaseException:
        import traceback

        send.send(("error", traceback.format_exc()))
        raise
    finally:
        send.close()


def _pack_run(run: _Run) -> dict:
    arrays = lambda ts: {k: v.detach().cpu().numpy() for k, v in ts.items()}  # noqa: E731
    return {
        "params": arrays(run.model.params), "buffers": arrays(run.model.buffers),
        "conf": run.model.conf, "validation_score": run.validation_score,
        "best_epoch": run.best_epoch, "epochs": run.epochs, "postprocessing": run.postprocessing,
    }  # fmt: skip


def _unpack_run(packed: dict, device) -> _Run:
    tensors = lambda arrays: {k: torch.from_numpy(v).to(device) for k, v in arrays.items()}  # noqa: E731
    model = StackedMLP(tensors(packed["params"]), tensors(packed["buffers"]), packed["conf"])
    return _Run(model, packed["validation_score"], packed["best_epoch"], packed["epochs"], packed["postprocessing"])


# ------------------------------------------------------------------------ entry point


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters (malloc.h)


def keep_freed_memory() -> bool:
    """Have glibc keep freed blocks for reuse instead of handing them back to the OS.

    By default blocks over 128 KiB are mmapped and unmapped one by one, so each temporary
    of a training step (a [batch, hidden] activation is 1 MiB) is page-faulted in anew:
    a third of a CPU training step here (benchmarks/probe_engines.py). Blocks up to
    32 MiB (glibc's maximum) now come from the heap, which is trimmed only above 256 MiB
    free; PyTorch's CPU tuning guide suggests jemalloc or tcmalloc for the same reason.
    Process-wide, idempotent; False where the C library is not glibc.
    """
    import ctypes
    import platform

    if platform.libc_ver()[0] != "glibc":
        return False
    libc = ctypes.CDLL(None)
    return bool(libc.mallopt(_M_MMAP_THRESHOLD, 32 << 20) and libc.mallopt(_M_TRIM_THRESHOLD, 256 << 20))


def prepare(emb_dir: Path, *, seed: int, device: str | None, progress: bool = False) -> tuple[_Probe, _Data]:
    """Seed the RNGs; load a task's metadata, heareval's score functions and the embeddings."""
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
        torch.Generator().manual_seed(seed), progress, seed,
    )  # fmt: skip
    data = _Data(task, emb_dir, label_to_idx, default_device(device))
    if data.device.type == "cpu":
        keep_freed_memory()
    data.dims()
    return probe, data


def probe_task(
    emb_dir: Path,
    *,
    grid: dict | None = None,
    max_grid_points: int = 8,
    seed: int = 42,
    device: str | None = None,
    progress: bool = False,
    workers: int | None = None,
    rng: str = "per_point",
) -> dict:
    """Train and test heareval's probe on one task's embeddings (heareval's format).

    `rng`: "per_point" (default) gives every point of a several-point grid seeds of its own,
    so points train in parallel and stack; "heareval" trains them one after another on the
    global RNG, drawing it where heareval draws it (no parallelism), so each point is the
    model heareval trains at that place of its grid search (the oracle test's mode).

    `grid` updates DEFAULT_GRID key by key (a scalar is a one-value list). On the CPU the
    grid points are shared by `workers` forked processes (None: torch's thread count, as a
    job's `threads` set it; each worker gets an equal share of the threads); the result
    does not depend on it. Returns
    {"task", "engine": "native", "seed", "metrics": {metric: mean over splits},
    "metrics_std": {metric: std}, "folds": [{"test", "metrics", "epochs", "best_epoch",
    "validation_score"(, "postprocessing")}], "hparams", "validation_score",
    "grid_points_tried"(, "postprocessing")}, JSON-serialisable.
    """
    import pandas as pd

    probe, data = prepare(emb_dir, seed=seed, device=device, progress=progress)
    task, metadata = probe.task, probe.task.metadata
    splits = data_splits(metadata)
    points = expand_grid(task_grid(grid, metadata), seed=seed, max_points=max_grid_points)

    trainer = _Trainer(probe, data, splits, torch.get_num_threads() if workers is None else workers, rng)
    runs = trainer.train_grid(points)
    if progress:
        for i, (conf, run) in enumerate(zip(points, runs, strict=True)):
            print(f"{task.name} grid {i + 1}/{len(points)} {conf}: {run.validation_score:.4f}",
                  file=sys.stderr)  # fmt: skip
    maximize = probe.use_scoring and probe.scores[0].maximize
    order = sorted(range(len(runs)), key=lambda i: runs[i].validation_score, reverse=maximize)
    best_run, best_conf = runs[order[0]], points[order[0]]
    split_runs = [best_run] + trainer.retrain(best_conf, grid_size=len(points))

    folds = []
    for split, run in zip(splits, split_runs, strict=True):
        test = data.build(split["test"], evaluate=True)
        probs = probe.activate(run.model.logits(test.x)[0]).cpu().numpy()
        fold = {
            "test": split["test"],
            "metrics": probe.evaluate(probs, test, probe.scores, run.postprocessing),
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
