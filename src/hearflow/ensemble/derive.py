"""Ensemble configurations derived from cached member embeddings (no model runs here).

The NTU-GURA recipe (DESIGN section 4): every member's feature axis is linearly interpolated
to a common size (1024 in the paper); members with fewer frames (CREPE, 50 ms hop) are
linearly interpolated in time to the frame count of the member with the most frames
(wav2vec2/HuBERT, 20 ms); `cat` interleaves per feature, `[h0, w0, c0, h1, w1, c1, ...]`
(the authors' cat_xwc, cat_wc, fusion_cat_xwc); `cat_blocks` joins the members' feature
blocks, `[h..., w...]` (the authors' cat_hubert_wav2vec2.py, `torch.cat(dim=2)`); `avg` is
the mean. Scene embeddings combine the members' pooled scene views: the time mean, or with
`pooling: {groups: N}` the means of N equal time groups joined group-major (the authors'
fusion_cat_xwc_time.py, 5 groups: 15360-d). That equals pooling the combined frames except
for the time interpolation of the coarser members (see docs/limits.md).

    build_config([member_dir_a, member_dir_b], out_dir, combine="cat", dim=1024)
"""

from __future__ import annotations

from itertools import groupby
from pathlib import Path

import numpy as np

from hearflow.core import hear
from hearflow.core.io import atomic_path, read_json, write_json
from hearflow.core.pooling import group_view

COMBINES = ("single", "avg", "cat", "cat_blocks")


def interpolate_linear(x: np.ndarray, size: int, axis: int = -1) -> np.ndarray:
    """Resize `axis` of `x` to `size` by linear interpolation.

    Same as `torch.nn.functional.interpolate(mode="linear", align_corners=False)`, which the
    original recipe used: sample i reads position (i + 0.5) * n / size - 0.5, clamped at 0.
    """
    x = np.moveaxis(np.asarray(x, dtype=np.float32), axis, -1)
    n = x.shape[-1]
    if n == size:
        return np.moveaxis(x, -1, axis).copy()
    # float32 arithmetic in torch's order, so results match it to rounding
    scale = np.float32(n / size)
    pos = np.maximum(scale * (np.arange(size, dtype=np.float32) + np.float32(0.5)) - np.float32(0.5), np.float32(0))
    lo = np.minimum(np.floor(pos).astype(np.int64), n - 1)
    hi = np.minimum(lo + 1, n - 1)
    w = np.clip(pos - lo.astype(np.float32), 0, 1).astype(np.float32)
    out = x[..., lo] * (np.float32(1) - w) + x[..., hi] * w
    return np.moveaxis(out, -1, axis)


def interleave_members(xs: list[np.ndarray]) -> np.ndarray:
    """[..., D] x M -> [..., M * D] with element M*k + m taken from member m's feature k."""
    return np.stack(xs, axis=-1).reshape(*xs[0].shape[:-1], -1)


def combine_members(xs: list[np.ndarray], combine: str, dim: int) -> np.ndarray:
    """Align every member's feature axis to `dim`, then interleave (`cat`), join the blocks
    (`cat_blocks`) or average (`avg`)."""
    if combine not in ("avg", "cat", "cat_blocks"):
        raise ValueError(f"combine must be 'avg', 'cat' or 'cat_blocks' here, got {combine!r}")
    aligned = [interpolate_linear(x, dim, axis=-1) for x in xs]
    if combine == "cat":
        return interleave_members(aligned)
    if combine == "cat_blocks":
        return np.concatenate(aligned, axis=-1)
    return np.mean(np.stack(aligned, axis=0), axis=0)


def combine_groups(xs: list[np.ndarray], combine: str, dim: int, groups: int) -> np.ndarray:
    """Members' group-pooled scene embeddings [n, N * D_m] (group-major) -> [n, N * D_out]:
    each group combined as frames are, the groups joined in time order."""
    shaped = [x.reshape(len(x), groups, -1) for x in xs]
    combined = combine_members(shaped, combine, dim)  # [n, N, D_out]
    return combined.reshape(len(combined), -1)


def align_time(frames: list[np.ndarray]) -> tuple[list[np.ndarray], int]:
    """Interpolate every member's frames [T_m, D_m] to the largest frame count; return it too."""
    ref = int(np.argmax([len(f) for f in frames]))  # first member with the most frames
    n = len(frames[ref])
    return [interpolate_linear(f, n, axis=0) for f in frames], ref


def _by_file(emb: np.ndarray, rows: list[tuple[str, float]]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Split a flattened event-embedding matrix back into per-file ([T, D], timestamps [T])."""
    out, start = {}, 0
    for fname, group in groupby(rows, key=lambda r: r[0]):
        ts = np.array([t for _, t in group], dtype=np.float64)
        out[fname] = (emb[start : start + len(ts)], ts)
        start += len(ts)
    return out


def member_provenance(view_dir: Path) -> dict:
    """The provenance.json of the member embedding dir that holds `view_dir`."""
    for parent in (view_dir, *view_dir.parents):
        if (parent / "provenance.json").is_file():
            return read_json(parent / "provenance.json")
    return {}


def member_views(member_dirs: list[Path], views: list[str], pooling: dict | str) -> list[Path]:
    """The view dirs a config reads: `<member>/<view>`, or for scene tasks under time-group
    pooling `<member>/groupsNN/<view>` (event tasks keep their frames)."""
    out = [Path(m) / v for m, v in zip(member_dirs, views, strict=True)]
    if pooling == "mean" or hear.Task.load(out[0]).is_event:
        return out
    grouped = [Path(m) / group_view(v, pooling["groups"]) for m, v in zip(member_dirs, views, strict=True)]
    missing = [str(g) for g in grouped if not (g / "task_metadata.json").is_file()]
    if missing:
        raise FileNotFoundError(
            f"time-group views {missing} do not exist: list {pooling['groups']} in embed.scene_groups "
            "(params.yaml) and embed again; they exist for the last and fusion views only"
        )
    return grouped


def build_config(
    member_dirs: list[Path], out_dir: Path, *, combine: str, dim: int | None, pooling: dict | str = "mean"
) -> Path:
    """Write a configuration's heareval embedding dir from its members' view dirs.

    `member_dirs` are heareval embedding dirs of one task (e.g. results/members/<model>/<task>/fusion,
    or .../groups05/fusion under time-group `pooling`: see `member_views`).
    `single` copies its one member unchanged; `avg`/`cat`/`cat_blocks` follow the GURA recipe.
    `config.json` records the members, their checkpoints and whether any is a stand-in.
    """
    if combine not in COMBINES:
        raise ValueError(f"combine must be one of {COMBINES}, got {combine!r}")
    if combine == "single" and len(member_dirs) != 1:
        raise ValueError(f"combine 'single' takes one member, got {len(member_dirs)}")
    if combine != "single" and not dim:
        raise ValueError(f"combine {combine!r} needs an aligned feature size 'dim'")
    for d in member_dirs:
        if not (d / "task_metadata.json").is_file():
            raise FileNotFoundError(
                f"member embeddings {d} do not exist: layer-index views (layers/NN) are written "
                "for scene tasks only, and 'last'/'fusion' for every task; check the config's layers"
            )
    task = hear.Task.load(member_dirs[0])
    with atomic_path(out_dir) as tmp:
        hear.copy_task_files(task, tmp)
        for split in task.splits:
            mats = [hear.read_embeddings(d, split) for d in member_dirs]
            targets = hear.read_target_labels(member_dirs[0], split)
            if combine == "single":
                hear.write_embeddings(tmp, split, mats[0])
                hear.write_target_labels(tmp, split, targets)
                if task.is_event:
                    rows = hear.read_filename_timestamps(member_dirs[0], split)
                    hear.write_filename_timestamps(tmp, split, rows)
            elif not task.is_event:
                groups = pooling["groups"] if isinstance(pooling, dict) else None
                mixed = combine_groups(mats, combine, dim, groups) if groups else combine_members(mats, combine, dim)
                hear.write_embeddings(tmp, split, mixed)
                hear.write_target_labels(tmp, split, targets)
            else:
                per_member = [_by_file(m, hear.read_filename_timestamps(d, split)) for m, d in zip(mats, member_dirs)]
                names = list(per_member[0])
                embs, stamps = [], []
                for name in names:
                    frames, ref = align_time([pm[name][0] for pm in per_member])
                    embs.append(combine_members(frames, combine, dim))
                    stamps.append(per_member[ref][name][1])
                hear.write_split(tmp, task, split, names, embs, stamps)
        members = [
            {"view": str(d), **{k: p.get(k) for k in ("model", "checkpoint", "stand_in")}}
            for d, p in ((d, member_provenance(d)) for d in member_dirs)
        ]
        write_json(
            tmp / "config.json",
            {
                "members": members,
                "combine": combine,
                "dim": dim,
                "pooling": pooling,
                "stand_in": any(bool(m["stand_in"]) for m in members),
            },
        )
    return out_dir
