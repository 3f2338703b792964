"""Resampling with soxr: length, rate, and quality (passband SNR, stopband attenuation)."""

from __future__ import annotations

import numpy as np
import soundfile as sf

from hearflow.core import hear
from hearflow.data.resample import resample_clip, resample_task
from tests.conftest import make_task


def _snr_db(ref: np.ndarray, est: np.ndarray) -> float:
    return 10 * np.log10(np.sum(ref**2) / np.sum((ref - est) ** 2))


def test_sine_48k_to_16k_matches_the_analytic_sine():
    sr_in, sr_out, f = 48000, 16000, 1000.0
    x = 0.5 * np.sin(2 * np.pi * f * np.arange(sr_in) / sr_in).astype(np.float32)
    y = resample_clip(x, sr_in, sr_out)
    assert len(y) == sr_out
    ref = 0.5 * np.sin(2 * np.pi * f * np.arange(sr_out) / sr_out)
    edge = 800  # 50 ms: filter transients at the ends
    assert _snr_db(ref[edge:-edge], y[edge:-edge]) >= 80


def test_tone_above_new_nyquist_is_removed():
    sr_in, sr_out = 48000, 16000
    x = 0.5 * np.sin(2 * np.pi * 12000 * np.arange(sr_in) / sr_in).astype(np.float32)
    y = resample_clip(x, sr_in, sr_out)
    edge = 800
    attenuation = 20 * np.log10(np.sqrt(np.mean(x**2)) / np.sqrt(np.mean(y[edge:-edge] ** 2)))
    assert attenuation >= 60


def test_resample_task_keeps_layout_labels_and_durations(tmp_path):
    task = make_task(
        tmp_path / "src", sample_rate=48000, durations={"train": [1.0, 0.5], "valid": [0.5], "test": [0.25]}
    )
    out = resample_task(task.root, tmp_path / "dst", sr_in=48000, sr_out=16000, workers=2)
    new = hear.Task.load(out)
    hear.check_task_layout(new, 16000)
    assert new.labels("train") == task.labels("train")
    for split, expected in (("train", [16000, 8000]), ("test", [4000])):
        files = sorted((out / "16000" / split).glob("*.wav"))
        infos = [sf.info(f) for f in files]
        assert [i.samplerate for i in infos] == [16000] * len(files)
        assert [i.frames for i in infos] == expected
    assert not (out / "48000").exists()


def test_max_clips_per_split_keeps_a_seeded_subset_with_its_labels(tmp_path):
    task = make_task(
        tmp_path / "src", sample_rate=48000, durations={"train": [0.2] * 6, "valid": [0.2] * 2, "test": [0.2] * 2}
    )
    a = resample_task(task.root, tmp_path / "a", sr_in=48000, sr_out=16000, max_clips_per_split=3, seed=1)
    b = resample_task(task.root, tmp_path / "b", sr_in=48000, sr_out=16000, max_clips_per_split=3, seed=1)
    small = hear.Task.load(a)
    hear.check_task_layout(small, 16000)
    assert len(small.labels("train")) == 3 and len(small.labels("test")) == 2
    assert small.labels("train") == hear.Task.load(b).labels("train")
    assert sorted(p.name for p in (a / "16000" / "train").glob("*.wav")) == sorted(small.labels("train"))
