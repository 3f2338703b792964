"""What a probe trains for on one task: loss, activation, heareval's scores, validation.

    probe, data = prepare(emb_dir, seed=42, device="cpu")   # Objective, Embeddings
    probs = probe.activate(logits)                          # softmax or sigmoid
    metrics = probe.evaluate(probs, data.build(["test"], evaluate=True), probe.scores, post)

Softmax + cross-entropy (multiclass) or sigmoid + BCE (multilabel, event). Metrics are
`heareval.score.available_scores`; a tuple score reports its first entry. The validation
value is the task's first `evaluation` score (the loss where
`use_scoring_for_early_stopping` is false), rounded to float32 as Lightning logs it; event
tasks choose their post-processing point on validation (`best_postprocessing`).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hearflow.core.hear import Task
from hearflow.probe.data import Embeddings, Split
from hearflow.probe.events import events_from_frames
from hearflow.probe.kernels import keep_freed_memory
from hearflow.probe.protocol import DEFAULT_EVENT_POSTPROCESSING, parameter_grid


def primary_value(ret: Any) -> float:
    """A heareval score's value: the first entry of a tuple score."""
    return float(ret[0][1] if isinstance(ret, tuple) else ret)


@dataclass
class Objective:
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

    @property
    def maximize(self) -> bool:
        """Whether a higher validation value is better (scores that say so; never the loss)."""
        return self.use_scoring and self.scores[0].maximize

    def loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Per-member mean loss [G] of logits [G, N, C] against targets [N, C]."""
        size, n, c = logits.shape
        if self.multiclass:
            target = y.argmax(dim=1).repeat(size)
            flat = torch.nn.functional.cross_entropy(logits.reshape(-1, c), target, reduction="none")
            return flat.view(size, n).mean(dim=1)
        full = torch.nn.functional.binary_cross_entropy_with_logits(logits, y.expand(size, n, c), reduction="none")
        return full.mean(dim=(1, 2))

    def activate(self, logits: torch.Tensor) -> torch.Tensor:
        return torch.softmax(logits, dim=-1) if self.multiclass else torch.sigmoid(logits)

    def events(self, probs: np.ndarray, data: Split, post: dict) -> dict[str, list[dict]]:
        return {
            slug: events_from_frames(probs[rows], data.times[rows], self.labels, **post)
            for slug, rows in data.files.items()
        }

    def evaluate(self, probs: np.ndarray, data: Split, scores: list, post: dict | None) -> dict:
        """{score name: primary value} of `scores` on one set."""
        if self.task.is_event:
            events = self.events(probs, data, post)
            return {str(s): primary_value(s(events, data.targets)) for s in scores}
        y = data.y.cpu().numpy()
        return {str(s): primary_value(s(probs, y)) for s in scores}

    def replicates(self, probs: np.ndarray, data: Split, post: dict | None, resamples: np.ndarray) -> dict:
        """{score name: [its value on each resample]}: `resamples` [B, n] index the test clips
        (rows of a scene task; files of an event task, in `data.files` order). Scene scores are
        heareval's functions on the resampled rows. Event scores count per file with heareval's
        own sed_eval metric, then sum the counts of each resample and let sed_eval compute the
        overall score from them, as heareval's loop over files does (a resample may hold a file
        twice, which heareval's per-file dict cannot)."""
        if not self.task.is_event:
            y = data.y.cpu().numpy()
            with np.errstate(all="ignore"):
                return {str(s): [primary_value(s(probs[idx], y[idx])) for idx in resamples] for s in self.scores}
        events = self.events(probs, data, post)
        files = list(data.files)
        out = {}
        for score in self.scores:
            counts = [event_counts(score, {f: events[f]}, {f: data.targets.get(f, [])}) for f in files]
            keys = sorted(counts[0]) if counts else []
            table = np.array([[c[k] for k in keys] for c in counts], dtype=np.float64)
            out[str(score)] = [
                event_score(score, dict(zip(keys, table[idx].sum(axis=0), strict=True))) for idx in resamples
            ]
        return out

    def best_postprocessing(self, probs: np.ndarray, data: Split) -> tuple[dict, float]:
        """heareval's validation choice: the point with the best primary score (NaN as 0;
        ties go to the larger point, as its reverse sort of (score, point) tuples)."""
        primary = self.scores[0]
        sign = 1.0 if primary.maximize else -1.0
        candidates = []
        for post in self.postprocessing:
            value = primary_value(primary(self.events(probs, data, post), data.targets))
            rank = 0.0 if math.isnan(value) else value
            candidates.append((sign * rank, tuple(post.items()), value, post))
        best = max(candidates, key=lambda c: c[:2])
        return best[3], best[2]

    def validate(self, logits: torch.Tensor, valid: Split) -> tuple[float, dict | None]:
        """One member's validation value (as Lightning logs it: float32) and, for event
        tasks, the post-processing point it was reached with."""
        post = self.postprocessing[0] if self.task.is_event else None
        if not self.use_scoring:
            value = float(self.loss(logits[None], valid.y)[0])
        elif self.task.is_event:
            post, value = self.best_postprocessing(self.activate(logits).cpu().numpy(), valid)
        else:
            probs = self.activate(logits).cpu().numpy()
            value = primary_value(self.scores[0](probs, valid.y.cpu().numpy()))
        return float(np.float32(value)), post


def _sed_eval_metrics(score):
    """A fresh sed_eval metrics object of a heareval event score, as its _compute builds it."""
    return score.score_class(event_label_list=list(score.label_to_idx.keys()), **score.params)


def event_counts(score, predictions: dict, targets: dict) -> dict[str, float]:
    """sed_eval's overall counts (Ntp, Nsys, Nref, ... ) of a heareval event score on the files
    of `predictions`, evaluated file by file as heareval's `_compute` does."""
    metrics = _sed_eval_metrics(score)
    reference = score.sed_eval_event_container(targets)
    estimated = score.sed_eval_event_container(predictions)
    for filename in predictions:
        metrics.evaluate(
            reference_event_list=reference.filter(filename=filename),
            estimated_event_list=estimated.filter(filename=filename),
        )
    return {k: float(v) for k, v in metrics.overall.items()}


def event_score(score, counts: dict[str, float]) -> float:
    """A heareval event score's primary value from sed_eval overall counts (event_counts,
    summed over files): sed_eval's own overall formulas, read out as heareval reads them."""
    from collections import ChainMap

    metrics = _sed_eval_metrics(score)
    metrics.overall = dict(counts)
    overall = dict(ChainMap(*metrics.results_overall_metrics().values()))
    return float(overall[score.scores[0]])


def prepare(emb_dir: Path, *, seed: int, device: str | None, progress: bool = False) -> tuple[Objective, Embeddings]:
    """Seed the RNGs; load a task's metadata, heareval's score functions and the embeddings."""
    import pandas as pd

    from hearflow.core.devices import default_device
    from hearflow.probe.scores import heareval_score

    score_module = heareval_score()
    available_scores, label_vocab_as_dict = score_module.available_scores, score_module.label_vocab_as_dict

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
        post_grid = metadata.get("evaluation_params", {}).get("event_postprocessing_grid", DEFAULT_EVENT_POSTPROCESSING)
        postprocessing = parameter_grid(post_grid)
        if not use_scoring and len(postprocessing) != 1:
            raise ValueError(
                f"{emb_dir}: without use_scoring_for_early_stopping the event "
                f"post-processing grid must have one point, got {post_grid}"
            )
    probe = Objective(
        task,
        labels,
        scores,
        use_scoring,
        postprocessing,
        torch.Generator().manual_seed(seed),
        progress,
        seed,
    )
    data = Embeddings(task, emb_dir, label_to_idx, default_device(device))
    if data.device.type == "cpu":
        keep_freed_memory()
    data.dims()
    return probe, data
