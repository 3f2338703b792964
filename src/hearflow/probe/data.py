"""A task's embedding sets on a device: heareval's embedding dir loaded once per split.

    data = Embeddings(task, emb_dir, label_to_idx, torch.device("cpu"))
    train = data.build(["fold00", "fold01"], evaluate=False)        # Split: x [N, D], y [N, C]

Targets are multi-hot float32 rows (one-hot for multiclass). Evaluation sets of event
tasks also hold each file's rows (by basename, as heareval), the frame timestamps and the
reference events.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from hearflow.core.hear import Task, read_embeddings, read_filename_timestamps, read_target_labels


def file_frames(filenames: list[str]) -> dict[str, np.ndarray]:
    """Row indices of each file (keyed by basename, as heareval), in order of appearance."""
    slugs = [Path(f).name for f in filenames]
    uniq, first, inverse = np.unique(slugs, return_index=True, return_inverse=True)
    rows = np.argsort(inverse, kind="stable")
    bounds = np.cumsum(np.bincount(inverse, minlength=len(uniq)))[:-1]
    groups = dict(zip(uniq, np.split(rows, bounds), strict=True))
    return {str(uniq[i]): groups[uniq[i]] for i in np.argsort(first)}


@dataclass
class Split:
    """One training/evaluation set: rows of one or more heareval splits, on a device."""

    x: torch.Tensor  # [N, D] float32
    y: torch.Tensor  # [N, C] float32 multi-hot (one-hot for multiclass)
    files: dict[str, np.ndarray] | None = None  # event tasks: basename -> row indices
    times: np.ndarray | None = None  # event tasks: [N] ms
    targets: dict | None = None  # event tasks: {file: [{"label", "start", "end"}]}


class Embeddings:
    """Embeddings of a task loaded once per split; sets built from lists of split names."""

    def __init__(self, task: Task, emb_dir: Path, label_to_idx: dict[str, int], device):
        self.task, self.emb_dir, self.label_to_idx, self.device = (
            task,
            emb_dir,
            label_to_idx,
            device,
        )
        self._cache: dict[str, tuple] = {}
        self._sets: dict[tuple, Split] = {}

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
                        f"{where}: multiclass rows need exactly one label; row {bad[0]} has {labels[bad[0]]}"
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

    def build(self, splits: list[str], *, evaluate: bool) -> Split:
        key = (tuple(splits), evaluate)
        if key not in self._sets:
            self._sets[key] = self._build(splits, evaluate=evaluate)
        return self._sets[key]

    def _build(self, splits: list[str], *, evaluate: bool) -> Split:
        parts = [self._load(s) for s in splits]
        x = torch.cat([p[0] for p in parts]).to(self.device)
        y = torch.cat([p[1] for p in parts]).to(self.device)
        if not (evaluate and self.task.is_event):
            return Split(x, y)
        targets: dict = {}
        for s in splits:
            targets.update(self.task.labels(s))
        filenames = [f for p in parts for f in p[2]]
        return Split(x, y, file_frames(filenames), np.concatenate([p[3] for p in parts]), targets)
