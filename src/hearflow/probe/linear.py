"""probe.engine: linear — ARCH-style linear probing on HEAR embedding dirs.

    from hearflow.probe.linear import linear_probe
    result = linear_probe(Path("results/configs/logmel/demo_tones-v1-full"))
    per_layer = linear_probe([layer_dir(i) for i in range(13)])      # trained together

ARCH (seeds/003, La Quatra et al. 2024; its ClassificationModel with no hidden layer)
trains one linear layer on mean-pooled frame embeddings: torch's AdamW (lr 1e-3, its
defaults otherwise), ExponentialLR with gamma 0.95 stepped per epoch, shuffled batches of
32, 200 epochs, cross-entropy, and keeps the epoch with the lowest validation loss. Here:

- scene tasks: HEAR scene embeddings are already time means (hearflow.embed.job), so they are
  the pooled embeddings. Multilabel tasks use sigmoid + BCE.
- event tasks (ARCH has none): the same linear layer frame by frame on the timestamp
  embeddings (sigmoid + BCE), then HEAR's event post-processing, its point chosen on
  validation by the task's primary score with the kept weights.
- splits, k-fold rotation and metrics are HEAR's (hearflow.probe.protocol.data_splits,
  heareval.score); mean and std over folds as every engine (protocol.engine_result).
- the kept epoch is a copy of its weights (ARCH keeps a reference to the live state dict,
  so it in effect tests the last epoch).
- several embedding dirs of one task (e.g. every layer of a model) train together as one
  stack of linear layers, W [L, D, C], on the same shuffled batches.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from hearflow.probe.objective import prepare
from hearflow.probe.protocol import data_splits, engine_result, fold_result


def linear_probe(
    emb_dirs: Path | list[Path],
    *,
    epochs: int = 200,
    lr: float = 1e-3,
    batch_size: int = 32,
    lr_decay: float = 0.95,
    weight_decay: float = 0.01,
    seed: int = 42,
    device: str | None = None,
) -> dict | list[dict]:
    """Linear probes of one task's embedding dir(s); hearflow.probe.protocol.engine_result
    ("engine": "linear", "hparams" = the settings, "validation_score" = the kept validation
    loss of the first split). A list of dirs (same task, same rows) gives a list of results."""
    single = isinstance(emb_dirs, str | Path)
    dirs = [Path(emb_dirs)] if single else [Path(d) for d in emb_dirs]
    if not dirs:
        raise ValueError("linear_probe needs at least one embedding dir")
    loaded = [prepare(d, seed=seed, device=device) for d in dirs]
    probe = loaded[0][0]
    for d, (p, _) in zip(dirs, loaded, strict=True):
        if p.task.metadata != probe.task.metadata or p.labels != probe.labels:
            raise ValueError(f"{d}: not the same task as {dirs[0]}; probe layers of one task together")
    torch.manual_seed(seed)
    settings = {
        "epochs": epochs,
        "lr": lr,
        "batch_size": batch_size,
        "lr_decay": lr_decay,
        "weight_decay": weight_decay,
    }
    folds: list[list[dict]] = [[] for _ in dirs]
    for split in data_splits(probe.task.metadata):
        sets = [
            (
                data.build(split["train"], evaluate=False),
                data.build(split["valid"], evaluate=True),
                data.build(split["test"], evaluate=True),
            )
            for _, data in loaded
        ]
        for y in (s[0].y for s in sets[1:]):
            if not torch.equal(y, sets[0][0].y):
                raise ValueError(f"{dirs}: training labels differ between the embedding dirs")
        weights, biases, best_epochs, losses = _fit(probe, sets, settings)
        for i, (train, valid, test) in enumerate(sets):
            post = None
            if probe.task.is_event:
                valid_probs = probe.activate(_forward(valid.x, weights[i], biases[i])).cpu().numpy()
                post, _ = probe.best_postprocessing(valid_probs, valid)
            probs = probe.activate(_forward(test.x, weights[i], biases[i])).cpu().numpy()
            folds[i].append(
                fold_result(
                    split["test"],
                    probe.evaluate(probs, test, probe.scores, post),
                    best_epoch=best_epochs[i],
                    validation_score=losses[i],
                    postprocessing=post,
                )
            )
    results = [
        engine_result(
            probe.task.name,
            "linear",
            seed,
            member_folds,
            dict(settings),
            postprocessing=member_folds[0]["postprocessing"] if probe.task.is_event else None,
        )
        for member_folds in folds
    ]
    return results[0] if single else results


@torch.no_grad()
def _forward(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    return x @ weight + bias


def _fit(probe, sets, settings: dict) -> tuple[list, list, list[int], list[float]]:
    """Train one linear layer per embedding dir together; keep each one's lowest-validation-loss epoch."""
    train_x = torch.stack([s[0].x for s in sets])  # [L, N, D]
    valid_x = torch.stack([s[1].x for s in sets])  # [L, Nv, D]
    train_y, valid_y = sets[0][0].y, sets[0][1].y
    layers = [torch.nn.Linear(train_x.shape[2], train_y.shape[1]) for _ in sets]  # torch's default init, as ARCH
    weight = torch.stack([m.weight.detach().T for m in layers]).to(train_x.device).requires_grad_()
    bias = torch.stack([m.bias.detach()[None] for m in layers]).to(train_x.device).requires_grad_()
    optimizer = torch.optim.AdamW([weight, bias], lr=settings["lr"], weight_decay=settings["weight_decay"])
    scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=settings["lr_decay"])
    best_loss = [math.inf] * len(sets)
    best_epoch = [-1] * len(sets)
    best_w, best_b = weight.detach().clone(), bias.detach().clone()
    n, batch_size = train_x.shape[1], settings["batch_size"]
    for epoch in range(settings["epochs"]):
        order = torch.randperm(n, generator=probe.generator).to(train_x.device)
        for start in range(0, n, batch_size):
            idx = order[start : start + batch_size]
            loss = probe.loss(torch.baddbmm(bias, train_x[:, idx], weight), train_y[idx]).sum()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        scheduler.step()
        with torch.no_grad():
            losses = probe.loss(torch.baddbmm(bias, valid_x, weight), valid_y).cpu().numpy()
        for i, value in enumerate(losses):
            if value < best_loss[i]:
                best_loss[i], best_epoch[i] = float(value), epoch
                best_w[i], best_b[i] = weight[i].detach(), bias[i].detach()
    weights = [best_w[i] for i in range(len(sets))]
    biases = [best_b[i][0] for i in range(len(sets))]
    return weights, biases, best_epoch, [float(np.float32(v)) for v in best_loss]
