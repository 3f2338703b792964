"""Raw recordings as published, in any format the data phase meets: decode, check, make mono.

The HEAR task folders hold 16-bit mono WAV at one rate (hearflow.core.audio reads those and
refuses anything else). Raw sources do not: the `recordings` suite builds its tasks from Ogg
Vorbis, 8 kHz telephone WAV and stereo 48 kHz renderings, and raw datasets come as FLAC, MP3
or GSM 6.10 inside WAV, at 8 to 128 kHz. This module is the one reader for all of them
(libsndfile through soundfile: WAV with PCM, float, u-law, A-law, IMA/MS ADPCM and GSM 6.10,
FLAC, Ogg Vorbis and Opus, MP3; the list is libsndfile's, `soundfile.available_formats()`).

Every failure names the source (`what`: a dataset or package), the file and what to do:

- a file that does not decode (corrupt, truncated header, not audio): `DecodeError`;
- an empty file (no samples), NaN/Inf samples, or digital silence: `DecodeError`; a silent
  recording labelled as a class would teach the probe nothing and hide a broken source.

Torch-free; soundfile and soxr are imported when a file is read.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


class DecodeError(ValueError):
    """A raw recording that cannot be used as it is."""


def decode(path: str | Path, *, what: str, fix: str) -> tuple[np.ndarray, int]:
    """Decode `path` to float32 [samples, channels] in [-1, 1] and its sample rate.

    `what` names the source for messages (e.g. "klettres-data" or "ESC-50"), `fix` says what
    to do when the file is unusable (e.g. "reinstall the package: apt-get install --reinstall
    klettres-data").
    """
    import soundfile as sf

    path = Path(path)
    try:
        audio, rate = sf.read(path, dtype="float32", always_2d=True)
    except Exception as err:  # LibsndfileError / RuntimeError / TypeError from soundfile
        raise DecodeError(f"{what}: {path}: unreadable audio ({err}); {fix}") from err
    if audio.shape[0] == 0:
        raise DecodeError(f"{what}: {path}: no samples (an empty recording); {fix}")
    if not np.isfinite(audio).all():
        raise DecodeError(f"{what}: {path}: NaN or Inf samples; {fix}")
    if not np.any(audio):
        raise DecodeError(f"{what}: {path}: digital silence (every sample is 0); {fix}")
    return audio, int(rate)


def to_mono(audio: np.ndarray) -> np.ndarray:
    """[samples, channels] -> [samples]: the mean of the channels (HEAR tasks are mono)."""
    return audio.mean(axis=1, dtype=np.float32) if audio.shape[1] > 1 else audio[:, 0]


def decode_mono(path: str | Path, rate: int, *, what: str, fix: str) -> np.ndarray:
    """Decode `path`, average its channels and resample it to `rate` (soxr VHQ, as the
    resample rule): float32 [samples]."""
    from hearflow.data.resample import resample_clip

    audio, sr = decode(path, what=what, fix=fix)
    return resample_clip(np.ascontiguousarray(to_mono(audio)), sr, rate)


def fit_length(audio: np.ndarray, n: int) -> np.ndarray:
    """Cut `audio` to `n` samples or zero-pad it at the end (as hear-preprocess pads and
    trims scene clips to the task's sample_duration)."""
    if len(audio) >= n:
        return audio[:n]
    return np.concatenate([audio, np.zeros(n - len(audio), dtype=audio.dtype)])
