"""The views of one embedding batch, accumulated from a stream of hidden-state chunks.

Scene views keep running sums per layer (time mean of each hidden state) and per time group;
event views keep only the last and fusion frames with their timestamps (hearflow.embed.job).
"""

from __future__ import annotations

from hearflow.core.pooling import time_group_bounds


class ChunkViews:
    """Accumulates the views of one batch from a stream of chunks, dropping padding frames.

    Time-group views are pooled on the reference frame grid (`hearflow.core.pooling`): a member
    on that grid (wav2vec2, HuBERT) keeps running sums per group; another (CREPE) keeps its
    clip's last and fusion frames, stretched to the grid when the clip is done, as the
    authors stretch CREPE to the transformer's frame count before pooling.
    """

    def __init__(self, n_clips: int, valid: list[int], scene: bool, scene_groups=(), reference=None):
        self.valid, self.scene = valid, scene
        self.sums = None  # scene: [L, n, D] float64 running sums
        self.groups = tuple(scene_groups) if scene else ()
        self.reference = list(reference if reference is not None else valid)  # grid frames per clip
        self.on_grid = [v == r for v, r in zip(valid, self.reference, strict=True)]
        # scene, clips on the grid: per N, [2 (last, fusion), n, N, D] float64 sums of each group
        self.bounds = {g: [time_group_bounds(r, g) for r in self.reference] for g in self.groups}
        self.group_sums = {}
        self.grid_frames = [[] for _ in range(n_clips)]  # scene, clips off the grid: [(last, fusion)]
        self.frames = [[] for _ in range(n_clips)]  # event: per clip [(last, fusion, ts)]

    def add(self, start: int, hidden, ts) -> None:
        import torch

        t = hidden.shape[2]
        if self.scene:
            if self.sums is None:
                self.sums = torch.zeros(hidden.shape[0], hidden.shape[1], hidden.shape[3], dtype=torch.float64)
            for i, n_valid in enumerate(self.valid):
                keep = max(0, min(t, n_valid - start))
                if keep:
                    self.sums[:, i] += hidden[:, i, :keep].sum(dim=1).double()  # float32 per chunk
            if self.groups:
                self._add_groups(start, hidden)
            return
        fusion = hidden.mean(dim=0)  # [n, t, D]
        for i, n_valid in enumerate(self.valid):
            keep = max(0, min(t, n_valid - start))
            if keep:
                # copies: a view would keep the chunk's every hidden state alive
                self.frames[i].append((hidden[-1, i, :keep].clone(), fusion[i, :keep].clone(), ts[:keep].clone()))

    def _add_groups(self, start: int, hidden) -> None:
        import torch

        t = hidden.shape[2]
        views = torch.stack([hidden[-1], hidden.mean(dim=0)])  # [2, n, t, D]: last, fusion
        for i, n_valid in enumerate(self.valid):
            keep = max(0, min(t, n_valid - start))
            if keep and not self.on_grid[i]:
                self.grid_frames[i].append(views[:, i, :keep].clone())
        for groups, per_clip in self.bounds.items():
            if groups not in self.group_sums:
                self.group_sums[groups] = torch.zeros(2, hidden.shape[1], groups, hidden.shape[3], dtype=torch.float64)
            for i, bounds in enumerate(per_clip):
                if not self.on_grid[i]:
                    continue
                for g, (a, b) in enumerate(bounds):
                    lo, hi = max(a, start) - start, min(b, start + t) - start
                    if hi > lo:
                        self.group_sums[groups][:, i, g] += views[:, i, lo:hi].sum(dim=1).double()

    def scene_means(self):
        """[L, n, D] float32: time mean of every hidden state per clip."""
        import torch

        counts = torch.tensor(self.valid, dtype=torch.float64)[None, :, None]
        return (self.sums / counts).float()

    def group_means(self, groups: int):
        """[2, n, N * D] float32: per clip the last and fusion means of each time group, joined."""
        import torch

        sizes = torch.tensor([[b - a for a, b in bounds] for bounds in self.bounds[groups]], dtype=torch.float64)
        means = (self.group_sums[groups] / sizes[None, :, :, None]).float()
        for i, parts in enumerate(self.grid_frames):
            if self.on_grid[i]:
                continue
            frames = torch.cat(parts, dim=1)  # [2, T_i, D]
            # the authors' stretch: F.interpolate(mode="linear") of the time axis to the grid
            grid = torch.nn.functional.interpolate(frames.transpose(1, 2), size=self.reference[i], mode="linear")
            grid = grid.transpose(1, 2)  # [2, T_ref, D]
            means[:, i] = torch.stack([grid[:, a:b].mean(dim=1) for a, b in self.bounds[groups][i]], dim=1)
        return means.reshape(2, means.shape[1], -1)

    def event_frames(self, i: int):
        """(last [T, D], fusion [T, D], ts [T]) of clip i."""
        import torch

        parts, self.frames[i] = self.frames[i], []  # the chunks go once their clip is joined
        return tuple(torch.cat([p[k] for p in parts]) for k in range(3))
