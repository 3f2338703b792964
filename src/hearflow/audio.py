"""Reading task audio and resampling it with soxr."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from hearflow.hear import Task, copy_task_files
from hearflow.io import atomic_path

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
    if not np.isfinite(audio).all():
        raise AudioError(f"{path}: NaN or Inf samples; the file is corrupt, re-extract the task")
    return audio


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


def resample_task(src: Path, dest: Path, *, sr_in: int, sr_out: int, workers: int = 1) -> Path:
    """Copy HEAR task `src` (audio at `sr_in`) to `dest` with its audio at `sr_out`.

    `dest` gets the metadata, vocabulary and label files and `<sr_out>/<split>/*.wav`;
    files are resampled in parallel threads (soxr releases the GIL).
    """
    task = Task.load(src)
    jobs = [
        (task.audio_dir(sr_in, split) / name, Path(str(sr_out)) / split / name)
        for split in task.splits
        for name in sorted(task.labels(split))
    ]

    with atomic_path(dest) as tmp:
        copy_task_files(task, tmp)
        for split in task.splits:
            (tmp / str(sr_out) / split).mkdir(parents=True, exist_ok=True)

        def one(job: tuple[Path, Path]) -> None:
            src_wav, rel = job
            audio = resample_clip(read_clip(src_wav, sr_in), sr_in, sr_out)
            write_clip(tmp / rel, audio, sr_out)

        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            list(pool.map(one, jobs))
    return dest
