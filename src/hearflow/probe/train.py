"""heareval's training loop for grid points that share a network shape, as one StackedMLP.

    runs = train_stack(probe, confs, train, valid, member_seeds(42, len(confs)))  # [Run]

Batches in file order, as in heareval (its DataLoader shuffles only when the split name
equals "train", but it always passes a list; `shuffle_train: [True]` in the grid shuffles
with a seeded `torch.Generator` instead); validation after epochs e with
(e + 1) % check_val_every_n_epoch == 0 on the task's first `evaluation` score (val loss
where `use_scoring_for_early_stopping` is false); Lightning's EarlyStopping (patience in
validation checks, strict improvement, stop on a non-finite value) and ModelCheckpoint
(first best kept); scores compared in float32 as Lightning logs them; the best checkpoint
is kept for testing. A last training batch of one row is skipped when BatchNorm is used
(heareval crashes on it).
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass

import torch

from hearflow.probe.data import Split
from hearflow.probe.objective import Objective
from hearflow.probe.stacked import STACK_KEYS, StackedMLP, StackedOptimizer


def draw_seed() -> None:
    """Advance the torch RNG as a new DataLoader iterator does (it draws its base seed).

    heareval draws the global torch RNG outside the maths too: a random summary input
    after building each model, and one seed per DataLoader pass (every training epoch and
    every validation). Drawing at the same points keeps a single-point run's
    initialisation and dropout draws in heareval's order.
    """
    torch.empty((), dtype=torch.int64).random_()


@dataclass
class Run:
    """One member's training run: its best checkpoint, where and after how long."""

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
    best: Run | None = None


def train_stack(
    probe: Objective,
    confs: list[dict],
    train: Split,
    valid: Split,
    seeds: list[tuple[int, int]] | None = None,
) -> list[Run]:
    """heareval training runs of grid points that share `STACK_KEYS`, as one StackedMLP.

    Each member keeps heareval's schedule: validation after epochs e with
    (e + 1) % check_val_every_n_epoch == 0, Lightning's EarlyStopping (patience in
    validation checks, strict improvement, stop on a non-finite value) and ModelCheckpoint
    (first best kept). A member leaves the stack when it stops; the rest train on.
    `seeds=None`: one member on the global torch RNG, drawn where heareval draws it; with
    member seeds (StackedMLP.build) the global RNG is not touched, and batches are shuffled
    (shuffle_train) by a generator seeded with the run's seed alone, the same for every stack.
    """
    shared = {k: confs[0][k] for k in STACK_KEYS}
    if any({k: c[k] for k in STACK_KEYS} != shared for c in confs):
        raise ValueError(f"grid points of one stack must share {STACK_KEYS}")
    model = StackedMLP.build(train.x.shape[1], train.y.shape[1], confs, train.x.device, seeds)
    heareval_draws = seeds is None
    shuffle = probe.generator if heareval_draws else torch.Generator().manual_seed(probe.seed)
    optimizer = StackedOptimizer(model, [c["lr"] for c in confs], shared["optim"])
    maximize = probe.maximize
    worst = -math.inf if maximize else math.inf

    def better(a: float, b: float) -> bool:
        return a > b if maximize else a < b

    members = [_Member(conf, worst) for conf in confs]
    alive = list(range(len(confs)))  # member index of each stack position
    skip_single = shared["hidden_norm"] == "batchnorm" and shared["hidden_layers"] > 0
    n, batch_size = len(train.x), shared["batch_size"]
    for epoch in range(max(c["max_epochs"] for c in confs)):
        if heareval_draws:
            draw_seed()  # heareval's training DataLoader iterator
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
                draw_seed()  # heareval's validation DataLoader iterator
            logits = model.logits(valid.x)  # [G, N, C]
        for p in due:
            member = members[alive[p]]
            value, post = probe.validate(logits[p], valid)
            checkpoint_value = worst if math.isnan(value) else value  # ModelCheckpoint's NaN rule
            if member.best is None or better(checkpoint_value, member.best.validation_score):
                member.best = Run(model.select([p]), checkpoint_value, epoch, 0, post)
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
