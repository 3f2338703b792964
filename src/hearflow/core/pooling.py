"""Scene pooling in equal time groups (the authors' fusion_cat_xwc_time.py): shared by the
embedding job, which writes the group views, and the ensembles, which read them.

The groups are formed on the reference frame grid, the transformer members' 20 ms frames
(a 25 ms window: 400 samples in, 320 between frames at 16 kHz), where the authors combine
the members: a member with other frames (CREPE, 250 ms apart for scenes) is stretched to
that grid by linear interpolation first, as their modules stretch CREPE to wav2vec2's
frame count. Every member's groups then cover the same stretch of time, and a config's
group-pooled scene embedding equals the authors' recipe up to float rounding."""

from __future__ import annotations


def group_view(view: str, groups: int) -> str:
    """The member view holding scene embeddings pooled in `groups` time groups."""
    return f"groups{groups:02d}/{view}"


def reference_frames(n_samples: int, sample_rate: int) -> int:
    """Frames of the reference grid in a clip of `n_samples`: 25 ms windows, 20 ms apart (at
    least one)."""
    window, hop = round(0.025 * sample_rate), round(0.02 * sample_rate)
    return max(1, (n_samples - window) // hop + 1)


def time_group_bounds(n_frames: int, groups: int) -> list[tuple[int, int]]:
    """Frames [start, end) of each of `groups` equal time groups, as fusion_cat_xwc_time.py
    forms them (`e[:, : T // N * N]` split into N groups of T // N frames: the last T % N
    frames are dropped). Clips of fewer than N frames (where the authors' code gives NaN) get
    one frame per group, frame floor(g * T / N)."""
    if groups < 1 or n_frames < 1:
        raise ValueError(f"need groups >= 1 and frames >= 1, got {groups}, {n_frames}")
    size = n_frames // groups
    if size == 0:
        return [(g * n_frames // groups, g * n_frames // groups + 1) for g in range(groups)]
    return [(g * size, (g + 1) * size) for g in range(groups)]
