"""Reading task audio and resampling it with soxr."""

from __future__ import annotations

import logging
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from hearflow.hear import Task, copy_task_files
from hearflow.io import atomic_path, write_json

log = logging.getLogger(__name__)


class AudioError(ValueError):
    """A clip cannot be used as it is."""


def read_clip(path: Path, sample_rate: int) -> np.ndarray:
    """Read a WAV as mono float32 [samples] in [-1, 1]; refuse a wrong rate or bad samples.

    Stereo is averaged to mono (with a warning): HEAR tasks are mono.
    """
    import soundfile as sf

    try:
        audio, sr = sf.read(path, dtype="float32", always_2d=True)
    except Exception as err:  # soundfile raises LibsndfileError/RuntimeError subclasses
        raise AudioError(f"{path}: unreadable audio ({err}); re-extract or re-download the task") from err
    if sr != sample_rate:
        raise AudioError(f"{path}: {sr} Hz inside a {sample_rate} Hz folder; resample the task again")
    if audio.shape[1] > 1:
        log.warning("%s: %d channels, averaged to mono", path, audio.shape[1])
        audio = audio.mean(axis=1)
    else:
        audio = audio[:, 0]  # a view: no copy of a long clip
    if not np.isfinite(audio).all():
        raise AudioError(f"{path}: NaN or Inf samples; the file is corrupt, re-extract the task")
    return audio


def clip_frames(path: Path, sample_rate: int) -> int:
    """Samples per channel of a WAV, from its header (no audio read); checks the rate."""
    import soundfile as sf

    try:
        info = sf.info(path)
    except Exception as err:
        raise AudioError(f"{path}: unreadable audio ({err}); re-extract or re-download the task") from err
    if info.samplerate != sample_rate:
        raise AudioError(f"{path}: {info.samplerate} Hz inside a {sample_rate} Hz folder; resample the task again")
    return int(info.frames)


def write_clip(path: Path, audio: np.ndarray, sample_rate: int) -> None:
    """Write mono float audio as 16-bit PCM WAV, atomically."""
    import soundfile as sf

    with atomic_path(path) as tmp:
        sf.write(tmp, audio, sample_rate, subtype="PCM_16", format="WAV")


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
