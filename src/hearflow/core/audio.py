"""Task audio as files: read a clip (checked rate, mono, finite), its length, write one.

Shared by the data phase (resampling writes clips) and the embed phase (reads them)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from hearflow.core.io import atomic_path

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
