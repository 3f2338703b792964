"""probe.engine: native — HEAR's downstream probe, natively in torch, following heareval 2021.1.3.

    from hearflow.probe import probe_task
    result = probe_task(Path("embeddings/<model>/<task>"))          # heareval's grid
    result = probe_task(emb_dir, grid={"hidden_dim": [32], "max_epochs": [30]})

heareval's `task_predictions` without pytorch-lightning: its splits, grid and selection
(hearflow.probe.protocol), its model (hearflow.probe.stacked), training schedule
(hearflow.probe.train), scores and event post-processing (hearflow.probe.objective,
hearflow.probe.events).

Grid points are trained together: on CUDA (when present) points that share the network
shape and batches (`STACK_KEYS`) form one `StackedMLP`, and each member keeps its own
schedule and leaves the stack when it stops. On the CPU, where stacking saves no
arithmetic, each point trains alone in one thread, and the points (then the re-trainings
on the other folds) are shared by up to `workers` forked processes (hearflow.probe.schedule;
default: the job's thread count). Each point of a several-point grid has its own seeds
(`member_seeds`), so its run does not depend on the others or on the worker count; its
dropout masks and linear layers use the CPU kernels of hearflow.probe.kernels. glibc is
told to keep freed memory (`keep_freed_memory`).

Deliberate differences (each a no-op on HEAR 2021's tasks, or where heareval fails):
- a last training batch of one row is skipped when BatchNorm is used (heareval crashes).
- event post-processing is chosen by the primary score's direction (heareval always takes
  the highest score, wrong only for a minimised primary score, which no task has).
- files with a single frame skip the median filter (heareval fails on them).
- test post-processing is the best epoch's, as heareval intends; under pytorch-lightning
  1.9.5 its `fit_loop.current_epoch = epoch` hack does not take and it fails (KeyError;
  probe.engine heareval restores the setter, see hearflow/probe/heareval_launch.py).
- `metrics_std` is the sample std over splits (pandas), 0.0 for a single split.

A one-point grid (and its re-trainings on the other folds) draws the global torch RNG
where heareval draws it (see `draw_seed`) and uses torch's dropout: on CPU it trains
heareval's model, with the same best epochs and scores equal up to float rounding
(tests/test_probe_engines.py runs heareval 2021.1.3 under pytorch-lightning 1.9.5 on
k-fold multilabel and event tasks). Grids of several points draw from the points' own
seeds, so their scores differ from heareval's as another seed's would; with
`rng="heareval"` they train one after another on the global RNG as heareval's loop does,
and tests/test_heareval_oracle.py checks that the whole grid search then picks heareval's
point.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from hearflow.probe.data import Embeddings
from hearflow.probe.objective import Objective, prepare
from hearflow.probe.protocol import (
    RNG_MODES,
    best_point,
    data_splits,
    engine_result,
    expand_grid,
    fold_result,
    task_grid,
    with_seeds,
)
from hearflow.probe.resamples import clip_resamples
from hearflow.probe.schedule import can_fork, run_jobs
from hearflow.probe.stacked import STACK_KEYS, StackedMLP, member_seeds
from hearflow.probe.train import Run, train_stack


class _Trainer:
    """Training runs of a task's grid points and re-trainings, here and in forked processes.

    A job is (split index, grid points, member seeds or None); `run` returns each job's
    runs in order. On the CPU every job runs in one thread, here or in one of `workers` - 1
    forks (hearflow.probe.schedule, where fork exists; the job's cost is its training
    arithmetic), which share the loaded embeddings copy-on-write and send their runs back
    as numpy arrays. A one-point grid and its re-trainings run here on every thread,
    drawing the global RNG as heareval (`fit` with seeds None).
    """

    def __init__(self, probe: Objective, data: Embeddings, splits: list[dict], workers: int, rng: str = "per_point"):
        if rng not in RNG_MODES:
            raise ValueError(f"rng must be one of {RNG_MODES}, got {rng!r}")
        self.probe, self.data, self.splits, self.rng = probe, data, splits, rng
        self.workers = workers if data.device.type == "cpu" and can_fork() else 1

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

    def fit(self, split: int, confs: list[dict], seeds: list | None) -> list[Run]:
        train = self.data.build(self.splits[split]["train"], evaluate=False)
        valid = self.data.build(self.splits[split]["valid"], evaluate=True)
        return train_stack(self.probe, confs, train, valid, seeds)

    def run(self, jobs: list[tuple[int, list[dict], list | None]]) -> list[list[Run]]:
        """Runs of each job (jobs with member seeds). On the CPU each job runs in one
        thread, here or in a fork, so that kernels and rounding are the same either way."""
        if self.data.device.type != "cpu":
            return [self.fit(*job) for job in jobs]
        cost = [self.flops(split, confs) for split, confs, _ in jobs]
        device = self.data.device
        return run_jobs(
            self.fit,
            jobs,
            cost=cost,
            workers=self.workers,
            pack=lambda runs: [_pack_run(run) for run in runs],
            unpack=lambda packed: [_unpack_run(run, device) for run in packed],
        )

    def train_grid(self, confs: list[dict]) -> list[Run]:
        """Runs of every grid point on the first split, in order.

        One point trains alone on the global RNG, as heareval. Several points get member
        seeds (member_seeds: by grid position), so a point's run does not depend on its
        company. On CUDA, points that share `STACK_KEYS` train together in one StackedMLP
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
                stacks.setdefault(tuple(repr(conf[k]) for k in STACK_KEYS), []).append(i)
            groups = list(stacks.values())
        jobs = [(0, [confs[i] for i in g], [seeds[i] for i in g]) for g in groups]
        runs: list = [None] * len(confs)
        for group, group_runs in zip(groups, self.run(jobs), strict=True):
            for i, run in zip(group, group_runs, strict=True):
                runs[i] = run
        return runs

    def retrain(self, conf: dict, *, grid_size: int) -> list[Run]:
        """The chosen point trained on splits 1 .. k-1: on the global RNG one after the
        other after a one-point grid (heareval's draws), else each with seeds of its own
        (member_seeds of the split), so the re-trainings run in parallel."""
        splits = range(1, len(self.splits))
        if grid_size == 1 or self.rng == "heareval":
            return [self.fit(split, [conf], None)[0] for split in splits]
        jobs = [(split, [conf], member_seeds(self.probe.seed, 1, stage=split)) for split in splits]
        return [runs[0] for runs in self.run(jobs)]

    def repeat(self, conf: dict, seeds: list[int]) -> list[list[Run]]:
        """The chosen point trained again on every split with each further probe seed (its
        member seeds: member_seeds(seed, 1, stage=split)): [seed][split] runs. On CUDA the
        seeds of a split train together as one StackedMLP (they share the shape and the
        batches); on the CPU each run is its own job, shared by the workers."""
        if not seeds:
            return []
        splits = range(len(self.splits))
        one = {(k, split): member_seeds(seed, 1, stage=split)[0] for k, seed in enumerate(seeds) for split in splits}
        if self.data.device.type == "cpu":
            jobs = [(split, [conf], [one[k, split]]) for k in range(len(seeds)) for split in splits]
            runs = [r[0] for r in self.run(jobs)]
            return [runs[k * len(splits) : (k + 1) * len(splits)] for k in range(len(seeds))]
        stacked = self.run(
            [(split, [conf] * len(seeds), [one[k, split] for k in range(len(seeds))]) for split in splits]
        )
        return [[stacked[split][k] for split in splits] for k in range(len(seeds))]


def _pack_run(run: Run) -> dict:
    arrays = lambda ts: {k: v.detach().cpu().numpy() for k, v in ts.items()}  # noqa: E731
    return {
        "params": arrays(run.model.params),
        "buffers": arrays(run.model.buffers),
        "conf": run.model.conf,
        "validation_score": run.validation_score,
        "best_epoch": run.best_epoch,
        "epochs": run.epochs,
        "postprocessing": run.postprocessing,
    }


def _unpack_run(packed: dict, device) -> Run:
    tensors = lambda arrays: {k: torch.from_numpy(v).to(device) for k, v in arrays.items()}  # noqa: E731
    model = StackedMLP(tensors(packed["params"]), tensors(packed["buffers"]), packed["conf"])
    return Run(model, packed["validation_score"], packed["best_epoch"], packed["epochs"], packed["postprocessing"])


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
    seeds: list[int] | None = None,
    bootstrap: int = 0,
) -> dict:
    """Train and test heareval's probe on one task's embeddings (heareval's format).

    `seeds` (params probe.seeds; None: [seed]): the first runs heareval's protocol (grid
    search, then the chosen point on the other splits); each further seed trains the chosen
    point again on every split with its own member seeds, so the seeds measure the training's
    randomness at the chosen hyper-parameters. `metrics` is then the mean over seeds and
    `per_seed` holds each seed's metrics; the first seed's folds, choice and validation are
    reported as before (a one-seed run is unchanged). `bootstrap` B > 0 also scores each
    seed's test predictions on B resamples of the test clips (hearflow.probe.resamples:
    the same resamples for every configuration of the task): `per_seed[i]["replicates"]`
    {metric: [B values, the mean over folds]} for the intervals of hearflow.report.stats.

    `rng`: "per_point" (default) gives every point of a several-point grid seeds of its own,
    so points train in parallel and stack; "heareval" trains them one after another on the
    global RNG, drawing it where heareval draws it (no parallelism), so each point is the
    model heareval trains at that place of its grid search (the oracle test's mode).

    `grid` updates DEFAULT_GRID key by key (a scalar is a one-value list). On the CPU the
    grid points are shared by `workers` forked processes (None: torch's thread count, as a
    job's `threads` set it; each worker gets an equal share of the threads); the result
    does not depend on it. Returns hearflow.probe.protocol.engine_result ("engine":
    "native"; each fold also has "epochs", and "grid_points_tried" is set).
    """
    seeds = list(seeds) if seeds else [seed]
    if seeds[0] != seed:
        raise ValueError(f"probe seeds {seeds}: the first is the run's seed ({seed})")
    probe, data = prepare(emb_dir, seed=seed, device=device, progress=progress)
    task, metadata = probe.task, probe.task.metadata
    splits = data_splits(metadata)
    points = expand_grid(task_grid(grid, metadata), seed=seed, max_points=max_grid_points)

    trainer = _Trainer(probe, data, splits, torch.get_num_threads() if workers is None else workers, rng)
    runs = trainer.train_grid(points)
    if progress:
        for i, (conf, run) in enumerate(zip(points, runs, strict=True)):
            print(f"{task.name} grid {i + 1}/{len(points)} {conf}: {run.validation_score:.4f}", file=sys.stderr)
    best = best_point([run.validation_score for run in runs], maximize=probe.maximize)
    best_run, best_conf = runs[best], points[best]
    split_runs = [best_run] + trainer.retrain(best_conf, grid_size=len(points))
    seed_runs = [split_runs] + trainer.repeat(best_conf, seeds[1:])

    per_seed = []
    for runs in seed_runs:
        folds, replicates = [], []
        for split, run in zip(splits, runs, strict=True):
            test = data.build(split["test"], evaluate=True)
            probs = probe.activate(run.model.logits(test.x)[0]).cpu().numpy()
            folds.append(
                fold_result(
                    split["test"],
                    probe.evaluate(probs, test, probe.scores, run.postprocessing),
                    epochs=run.epochs,
                    best_epoch=run.best_epoch,
                    validation_score=run.validation_score,
                    postprocessing=run.postprocessing if task.is_event else None,
                )
            )
            if bootstrap:
                n = len(test.files) if task.is_event else test.x.shape[0]
                resamples = clip_resamples(n, bootstrap, f"{emb_dir.name}/{'+'.join(split['test'])}")
                replicates.append(probe.replicates(probs, test, run.postprocessing, resamples))
            if progress:
                print(f"{task.name} test {split['test']}: {folds[-1]['metrics']}", file=sys.stderr)
        per_seed.append((folds, replicates))
    result = engine_result(
        task.name,
        "native",
        seed,
        per_seed[0][0],
        dict(best_conf),
        grid_points=len(points),
        postprocessing=best_run.postprocessing if task.is_event else None,
    )
    return with_seeds(result, seeds, per_seed)
