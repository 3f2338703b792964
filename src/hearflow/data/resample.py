"""Resampling a task folder with soxr, and the seeded clip cap applied at extraction."""

from __future__ import annotations

import logging
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from hearflow.core.audio import read_clip, write_clip
from hearflow.core.hear import Task, copy_task_files
from hearflow.core.io import atomic_path, write_json

log = logging.getLogger(__name__)


def resample_clip(audio: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """Resample float32 [samples] with soxr's very-high-quality filter."""
    import soxr

    if sr_in == sr_out:
        return audio
    return soxr.resample(audio, sr_in, sr_out, quality="VHQ").astype(np.float32)


def cap_clips(names: list[str], max_clips: int | None, *, seed: int, split: str) -> list[str]:
    """A seeded, sorted subset of at most `max_clips` clip names (all of them when None)."""
    names = sorted(names)
    if max_clips is None or len(names) <= max_clips:
        return names
    rng = np.random.default_rng([seed, zlib.crc32(split.encode())])
    return sorted(rng.choice(names, size=max_clips, replace=False).tolist())


def resample_task(
    src: Path,
    dest: Path,
    *,
    sr_in: int,
    sr_out: int,
    workers: int = 1,
    max_clips_per_split: int | None = None,
    seed: int = 0,
) -> Path:
    """Copy HEAR task `src` (audio at `sr_in`) to `dest` with its audio at `sr_out`.

    `dest` gets the metadata, vocabulary and label files and `<sr_out>/<split>/*.wav`;
    files are resampled in parallel threads (soxr releases the GIL). With
    `max_clips_per_split`, each split keeps a seeded random subset of that many clips (and
    its label file lists only those): smoke runs on the real tasks.
    """
    task = Task.load(src)
    keep = {
        split: cap_clips(list(task.labels(split)), max_clips_per_split, seed=seed, split=split) for split in task.splits
    }
    jobs = [
        (task.audio_dir(sr_in, split) / name, Path(str(sr_out)) / split / name)
        for split in task.splits
        for name in keep[split]
    ]

    with atomic_path(dest) as tmp:
        copy_task_files(task, tmp)
        if max_clips_per_split is not None:
            for split in task.splits:
                labels = task.labels(split)
                write_json(tmp / f"{split}.json", {name: labels[name] for name in keep[split]})
        for split in task.splits:
            (tmp / str(sr_out) / split).mkdir(parents=True, exist_ok=True)

        def one(job: tuple[Path, Path]) -> None:
            src_wav, rel = job
            audio = resample_clip(read_clip(src_wav, sr_in), sr_in, sr_out)
            write_clip(tmp / rel, audio, sr_out)

        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            list(pool.map(one, jobs))
    return dest
