"""Bootstrap resamples of a task's test clips, shared by every configuration and seed.

    idx = clip_resamples(60, 100, "demo_tones-v1-full/test")    # [100, 60] clip indices

The probe scores each seed's test predictions on these resamples (Objective.replicates);
hearflow.report.stats turns them into intervals. The same key (a task and its test splits) gives the
same resamples in every job, so that differences between configurations are paired.
"""

from __future__ import annotations

import hashlib

import numpy as np


def clip_resamples(n: int, replicates: int, key: str) -> np.ndarray:
    """[replicates, n] indices of bootstrap resamples of n test clips, the same for every call
    with the same `key`: every seed and configuration of a task is scored on the same resamples."""
    seed = int.from_bytes(hashlib.sha256(f"{key}/{n}".encode()).digest()[:8], "little")
    return np.random.default_rng(seed).integers(0, n, size=(replicates, n))
