"""Scene pooling in equal time groups (the authors' fusion_cat_xwc_time.py): shared by the
embedding job, which writes the group views, and the ensembles, which read them. numpy-free."""

from __future__ import annotations


def group_view(view: str, groups: int) -> str:
    """The member view holding scene embeddings pooled in `groups` time groups."""
    return f"groups{groups:02d}/{view}"


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
