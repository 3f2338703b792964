"""The HEAR task layout and heareval's on-disk embedding format.

Task directory (hear-preprocess layout)::

    <task>/task_metadata.json
    <task>/labelvocabulary.csv          columns idx,label
    <task>/{split}.json                 scene: {"x.wav": [label, ...]}
                                        event: {"x.wav": [{"label", "start", "end"} (ms)]}
    <task>/<sample_rate>/<split>/*.wav

Embedding directory (what `heareval.predictions.runner` reads), per split::

    {split}.embeddings.npy              RAW float32 memmap, no .npy header, shape below
    {split}.embedding-dimensions.json   [N, D]
    {split}.target-labels.pkl           pickled list (length N) of label lists
    {split}.filename-timestamps.json    [[file, ms], ...] (event tasks only)
    plus copies of task_metadata.json, labelvocabulary.csv and {split}.json
"""

from __future__ import annotations

import csv
import json
import pickle
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hearflow.core.io import atomic_path, read_json, write_json

# What hear-preprocess v2021.1.0 writes into every task_metadata.json (the task config
# unchanged plus `splits` and `mode`), and what heareval reads. `nfolds` is written only for
# k-fold split modes: hear-preprocess forbids it for trainvaltest (its task_config check), so
# 8 of the 20 HEAR 2021 archives have none. Other keys (`mode`, `default_mode`,
# `download_urls`, `tmp_dir`, `split_percentage`, `tfds_*`, ...) are kept and ignored.
METADATA_KEYS = (
    "task_name",
    "version",
    "embedding_type",
    "prediction_type",
    "split_mode",
    "sample_duration",
    "evaluation",
    "splits",
)
# Sample rate (Hz) of HEAR 2021's public task archives (Zenodo) and of the demo suite's, so the
# folder every other rate is resampled from.
ARCHIVE_RATE = 48000
EMBEDDING_TYPES = ("scene", "event")
PREDICTION_TYPES = ("multiclass", "multilabel")
SPLIT_MODES = ("trainvaltest", "presplit_kfold", "new_split_kfold")
KFOLD_SPLIT_MODES = ("presplit_kfold", "new_split_kfold")
TRAINVALTEST_SPLITS = ("train", "valid", "test")


class TaskFormatError(ValueError):
    """A task directory does not follow the HEAR layout."""


@dataclass(frozen=True)
class Task:
    """A HEAR task directory and its metadata."""

    root: Path
    metadata: dict

    @classmethod
    def load(cls, root: str | Path) -> "Task":
        root = Path(root)
        meta_path = root / "task_metadata.json"
        if not meta_path.is_file():
            raise TaskFormatError(f"{root}: no task_metadata.json; is this a HEAR task directory?")
        metadata = read_json(meta_path)
        validate_metadata(metadata, where=str(meta_path))
        return cls(root, metadata)

    @property
    def name(self) -> str:
        """The directory's name. For a task (data/tasks/<rate>/<task>) or a config's embedding
        dir (results/configs/<config>/<task>) that is the task directory name, which keys
        results and messages; `task_name` is shorter and shared by several directories
        (nsynth_pitch for both 5h and 50h)."""
        return self.root.name

    @property
    def splits(self) -> list[str]:
        return list(self.metadata["splits"])

    @property
    def embedding_type(self) -> str:
        return self.metadata["embedding_type"]

    @property
    def is_event(self) -> bool:
        return self.embedding_type == "event"

    def labels(self, split: str) -> dict:
        """Labels of one split: {filename: [label, ...]} or {filename: [event, ...]}."""
        return read_json(self.root / f"{split}.json")

    def vocabulary(self) -> list[str]:
        """Labels ordered by idx."""
        return read_vocabulary(self.root / "labelvocabulary.csv")

    def audio_dir(self, sample_rate: int, split: str) -> Path:
        return self.root / str(sample_rate) / split

    def sample_rates(self) -> list[int]:
        return sorted(int(p.name) for p in self.root.iterdir() if p.is_dir() and p.name.isdigit())


def validate_metadata(metadata: dict, *, where: str) -> None:
    """Accept exactly what hear-preprocess writes: the keys above, `nfolds` only (and then as
    a positive int) for k-fold split modes, any further keys."""
    missing = [k for k in METADATA_KEYS if k not in metadata]
    if missing:
        raise TaskFormatError(f"{where}: missing keys {missing}")
    checks = (
        ("embedding_type", EMBEDDING_TYPES),
        ("prediction_type", PREDICTION_TYPES),
        ("split_mode", SPLIT_MODES),
    )
    for key, allowed in checks:
        if metadata[key] not in allowed:
            raise TaskFormatError(f"{where}: {key}={metadata[key]!r}, expected one of {allowed}")
    if not metadata["evaluation"]:
        raise TaskFormatError(f"{where}: 'evaluation' lists no metric")
    splits = metadata["splits"]
    if not isinstance(splits, list) or not splits or len(set(splits)) != len(splits):
        raise TaskFormatError(f"{where}: 'splits' must list distinct split names, got {splits!r}")
    if metadata["split_mode"] in KFOLD_SPLIT_MODES:
        nfolds = metadata.get("nfolds", len(splits))
        if isinstance(nfolds, bool) or not isinstance(nfolds, int) or nfolds != len(splits):
            raise TaskFormatError(f"{where}: nfolds={nfolds!r} but 'splits' lists {len(splits)} folds")
    else:
        if sorted(splits) != sorted(TRAINVALTEST_SPLITS):
            raise TaskFormatError(
                f"{where}: split_mode trainvaltest needs splits {list(TRAINVALTEST_SPLITS)}, got {splits}"
            )
        if metadata.get("nfolds") is not None:
            raise TaskFormatError(
                f"{where}: nfolds={metadata['nfolds']!r} with split_mode trainvaltest; hear-preprocess "
                "writes no nfolds for trainvaltest tasks"
            )


def read_vocabulary(path: str | Path) -> list[str]:
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows or set(rows[0]) != {"idx", "label"}:
        raise TaskFormatError(f"{path}: expected columns idx,label")
    rows.sort(key=lambda r: int(r["idx"]))
    if [int(r["idx"]) for r in rows] != list(range(len(rows))):
        raise TaskFormatError(f"{path}: idx must run 0..{len(rows) - 1} without gaps")
    return [r["label"] for r in rows]


def write_vocabulary(path: str | Path, labels: list[str]) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["idx", "label"])
            for i, label in enumerate(labels):
                w.writerow([i, label])


def check_task_layout(task: Task, sample_rate: int) -> None:
    """Every labelled clip of every split exists at `sample_rate`; every label is known."""
    vocab = set(task.vocabulary())
    for split in task.splits:
        audio_dir = task.audio_dir(sample_rate, split)
        if not audio_dir.is_dir():
            raise TaskFormatError(f"{task.name}: no audio folder {audio_dir}")
        present = {p.name for p in audio_dir.glob("*.wav")}
        for fname, labels in task.labels(split).items():
            if fname not in present:
                raise TaskFormatError(
                    f"{task.name}/{split}.json names {fname}, missing from {audio_dir}; re-extract the "
                    f"task (delete its data/tasks folders and rerun) or remove {fname} from {split}.json"
                )
            names = [e["label"] if isinstance(e, dict) else e for e in labels]
            unknown = [str(n) for n in names if str(n) not in vocab]
            if unknown:
                raise TaskFormatError(
                    f"{task.name}/{split}.json: {fname} has labels {unknown} "
                    f"not in labelvocabulary.csv; add them there or correct {split}.json"
                )


def copy_task_files(task: Task, dest: Path) -> None:
    """Copy metadata, vocabulary and label files (not audio) of `task` into `dest`."""
    dest.mkdir(parents=True, exist_ok=True)
    names = ["task_metadata.json", "labelvocabulary.csv"] + [f"{s}.json" for s in task.splits]
    for name in names:
        shutil.copyfile(task.root / name, dest / name)


# ---------------------------------------------------------------- heareval embedding format


def write_embeddings(emb_dir: Path, split: str, embeddings: np.ndarray | list[np.ndarray]) -> None:
    """Write [N, D] float32 as heareval's raw memmap plus its dimensions file.

    `embeddings` is one [N, D] array or a list of [n_i, D] row blocks (one per clip of an
    event task), written one after another so no concatenated copy is ever held.
    """
    blocks = [embeddings] if isinstance(embeddings, np.ndarray) else list(embeddings)
    if not blocks or any(np.ndim(b) != 2 for b in blocks) or len({np.shape(b)[1] for b in blocks}) != 1:
        shapes = sorted({np.shape(b) for b in blocks})
        raise ValueError(f"{emb_dir}/{split}: embeddings must be [N, D] blocks of one D, got shapes {shapes[:3]}")
    bad = sum(int((~np.isfinite(b)).any(axis=1).sum()) for b in blocks)
    if bad:
        raise ValueError(f"{emb_dir}/{split}: {bad} embedding rows hold NaN or Inf; not written")
    with atomic_path(emb_dir / f"{split}.embeddings.npy") as tmp:
        with open(tmp, "wb") as f:
            for block in blocks:
                np.ascontiguousarray(block, dtype=np.float32).tofile(f)
    shape = [sum(len(b) for b in blocks), int(np.shape(blocks[0])[1])]
    write_json(emb_dir / f"{split}.embedding-dimensions.json", shape, indent=None)


def read_embeddings(emb_dir: Path, split: str) -> np.ndarray:
    """Read heareval's raw memmap back as an in-memory [N, D] float32 array."""
    shape = tuple(json.loads((emb_dir / f"{split}.embedding-dimensions.json").read_text()))
    path = emb_dir / f"{split}.embeddings.npy"
    expected = int(np.prod(shape)) * 4
    if path.stat().st_size != expected:
        raise ValueError(f"{path}: {path.stat().st_size} bytes, expected {expected} for {shape}")
    return np.array(np.memmap(path, dtype=np.float32, mode="r", shape=shape))


def write_target_labels(emb_dir: Path, split: str, labels: list[list]) -> None:
    with atomic_path(emb_dir / f"{split}.target-labels.pkl") as tmp:
        with open(tmp, "wb") as f:
            pickle.dump(labels, f)


def read_target_labels(emb_dir: Path, split: str) -> list[list]:
    with open(emb_dir / f"{split}.target-labels.pkl", "rb") as f:
        return pickle.load(f)


def write_filename_timestamps(emb_dir: Path, split: str, rows: list[tuple[str, float]]) -> None:
    write_json(
        emb_dir / f"{split}.filename-timestamps.json",
        [[f, float(t)] for f, t in rows],
        indent=None,
    )


def read_filename_timestamps(emb_dir: Path, split: str) -> list[tuple[str, float]]:
    return [(f, t) for f, t in read_json(emb_dir / f"{split}.filename-timestamps.json")]


def labels_at_timestamps(events: list[dict], timestamps_ms: np.ndarray) -> list[list]:
    """Labels active at each timestamp, as heareval computes them (start <= t <= end)."""
    return [
        [e["label"] for e in events if e["start"] <= t <= e["end"] + 1e-4]
        for t in np.asarray(timestamps_ms, dtype=np.float64)
    ]


def write_split(
    emb_dir: Path,
    task: Task,
    split: str,
    filenames: list[str],
    embeddings: list[np.ndarray],
    timestamps: list[np.ndarray] | None = None,
) -> None:
    """Write one split of one task in heareval's format.

    Scene tasks: `embeddings[i]` is [D] for clip `filenames[i]`.
    Event tasks: `embeddings[i]` is [T_i, D] at `timestamps[i]` (ms, [T_i]).
    """
    labels = task.labels(split)
    if task.is_event:
        if timestamps is None:
            raise ValueError(f"{task.name}/{split}: event task needs timestamps")
        rows, targets = [], []
        for fname, ts in zip(filenames, timestamps, strict=True):
            rows += [(fname, float(t)) for t in ts]
            targets += labels_at_timestamps(labels[fname], ts)
        write_filename_timestamps(emb_dir, split, rows)
    else:
        embeddings = np.stack(embeddings, axis=0)
        targets = [list(labels[f]) for f in filenames]
    write_embeddings(emb_dir, split, embeddings)  # event tasks: one row block per clip, no copy
    write_target_labels(emb_dir, split, targets)
