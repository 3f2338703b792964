"""HEAR event post-processing: frame probabilities of one file -> events, as heareval.

    events = events_from_frames(probs, timestamps_ms, labels, median_filter_ms=250, min_duration=125)

Frame probabilities per file -> median filter -> threshold 0.5 -> runs of consecutive
frames -> events of at least `min_duration` ms. Files with a single frame skip the median
filter (heareval fails on them). Torch-free.
"""

from __future__ import annotations

import numpy as np


def events_from_frames(
    frame_probs: np.ndarray,
    timestamps_ms: np.ndarray,
    labels: list[str],
    *,
    threshold: float = 0.5,
    median_filter_ms: float,
    min_duration: float,
) -> list[dict]:
    """Frame probabilities [T, C] at timestamps [T] (ms) -> events of one file.

    As heareval's `create_events_from_prediction`: frames sorted by time (a repeated
    timestamp keeps its last frame), median filter of round(median_filter_ms / mean hop)
    frames per label, active where prob > threshold, each run of consecutive active frames
    becomes {"label", "start", "end"} (ms, first and last frame) if end - start >=
    min_duration. Events are sorted by start (ties: label order).
    """
    from scipy.ndimage import median_filter

    probs = np.asarray(frame_probs)
    times = np.asarray(timestamps_ms, dtype=np.float64)
    if probs.ndim != 2 or probs.shape != (len(times), len(labels)):
        raise ValueError(f"frame_probs must be [T={len(times)}, C={len(labels)}], got {probs.shape}")
    order = np.argsort(times, kind="stable")
    times, probs = times[order], probs[order]
    last_of_time = np.append(times[1:] != times[:-1], True)
    times, probs = times[last_of_time], probs[last_of_time]
    if median_filter_ms and len(times) > 1:
        width = int(round(median_filter_ms / np.mean(np.diff(times))))
        if width:
            probs = median_filter(probs, size=(width, 1))
    active = probs > threshold
    events = []
    for c, label in enumerate(labels):
        idx = np.flatnonzero(active[:, c])
        if idx.size == 0:
            continue
        breaks = np.flatnonzero(np.diff(idx) != 1)
        starts = idx[np.r_[0, breaks + 1]]
        ends = idx[np.r_[breaks, idx.size - 1]]
        for s, e in zip(starts, ends, strict=True):
            if times[e] - times[s] >= min_duration:
                events.append({"label": label, "start": float(times[s]), "end": float(times[e])})
    events.sort(key=lambda ev: ev["start"])
    return events
