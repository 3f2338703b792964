"""One forward pass per (model, clip): every view the ablations and layer analyses need.

    embed_task(Path("data/tasks/16000/demo_tones-v1-full"), Path("results/members/crepe_tiny/demo_tones-v1-full"),
               module="crepe", options={"capacity": "tiny"})

Writes, in heareval's format (one directory per view, each a complete embedding dir):

    <out>/last/           last hidden state   (scene: time mean; event: frames + timestamps)
    <out>/fusion/         mean of all hidden states
    <out>/layers/<NN>/    scene tasks only: time mean of hidden state NN (layer analysis)
    <out>/groupsNN/{last,fusion}/  scene tasks only, for each N of `scene_groups`: the means
                          of N equal time groups joined group-major, [N * D] (hearflow.pooling)
    <out>/provenance.json model, options, checkpoint revision, stand-in flag, numerics

Scene tasks are embedded with the model's scene settings (CREPE: 250 ms hop), event tasks
with its timestamp settings (CREPE: 50 ms hop); each task needs only one of the two.

Memory stays bounded whatever the clip length: clips are read batch by batch, each module
streams its hidden states chunk by chunk (`iter_layers`), scene views keep running sums per
layer, and event views keep only the last and fusion frames. Clips are batched by similar
length (`length_batches`): zero padding is allowed where the module says it leaves real
frames unchanged (`pads_exactly`), up to `max_padding` of the batch's samples.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections import defaultdict
from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from hearflow import hear
from hearflow.audio import AudioError, clip_frames, read_clip
from hearflow.io import atomic_path, write_json
from hearflow.pooling import group_view, reference_frames, time_group_bounds
from hearflow.provenance import log_run, result_provenance

if TYPE_CHECKING:
    from hearflow.models import EmbeddingModel, ModelModule

log = logging.getLogger(__name__)


PRECISIONS = {"float32": None, "bfloat16": "bfloat16", "float16": "float16"}


def length_batches(
    lengths: dict[str, int],
    batch_size: int,
    *,
    max_padding: float = 0.0,
    max_batch_samples: int | None = None,
) -> list[list[str]]:
    """Group clip names into batches of similar length.

    Clips are sorted by length (then name) and a batch grows while it has fewer than
    `batch_size` clips, its zero padding stays within `max_padding` of its samples (0: equal
    lengths only) and, with `max_batch_samples`, its padded size stays within that budget
    (a clip longer than the budget gets a batch of its own).
    """
    order = sorted(lengths, key=lambda n: (lengths[n], n))
    batches: list[list[str]] = []
    current: list[str] = []
    for name in order:
        if current:
            cand = [*current, name]
            longest = lengths[name]  # sorted: the newcomer is the longest
            padded = longest * len(cand)
            waste = 1.0 - sum(lengths[n] for n in cand) / padded
            fits = len(cand) <= batch_size and waste <= max_padding + 1e-12
            if max_batch_samples is not None and padded > max_batch_samples:
                fits = False
            if fits:
                current = cand
                continue
            batches.append(current)
        current = [name]
    if current:
        batches.append(current)
    return batches


def padding_waste(lengths: dict[str, int], batches: list[list[str]]) -> float:
    """Fraction of the samples fed to the model that are zero padding."""
    fed = sum(max(lengths[n] for n in b) * len(b) for b in batches)
    return 1.0 - sum(lengths.values()) / fed if fed else 0.0


class _Views:
    """Accumulates the views of one batch from a stream of chunks, dropping padding frames.

    Time-group views are pooled on the reference frame grid (`hearflow.pooling`): a member
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


def embed_task(
    task_dir: Path,
    out_dir: Path,
    *,
    module: str,
    options: dict,
    batch_size: int = 16,
    max_padding: float = 0.1,
    max_batch_seconds: float | None = 160.0,
    precision: str = "float32",
    device: str | None = None,
    scene_groups: tuple[int, ...] | list[int] = (),
    progress: bool = True,
    provenance: dict | None = None,
) -> Path:
    """Embed every clip of every split of one task with one model; see the module doc."""
    import torch
    from tqdm import tqdm

    from hearflow.models import check_model, import_module

    if precision not in PRECISIONS:
        raise ValueError(f"embed.precision must be one of {sorted(PRECISIONS)}, got {precision!r}")
    start = time.time()
    mod = import_module(module)
    imported = time.time()
    model = check_model(mod.load_model(**options, device=device), module)  # before any audio is read
    log.info("%s: module imported in %.3f s, model loaded in %.3f s", module, imported - start, time.time() - imported)
    task = hear.Task.load(task_dir)
    hear.check_task_layout(task, model.sample_rate)
    scene = not task.is_event
    dev = torch.device(model.device)
    if precision != "float32" and dev.type != "cuda":
        log.warning("embed.precision=%s applies on CUDA only; %s runs in float32", precision, dev)
    autocast = (
        torch.autocast("cuda", dtype=getattr(torch, PRECISIONS[precision]))
        if precision != "float32" and dev.type == "cuda"
        else nullcontext()
    )
    pad = max_padding if model.pads_exactly else 0.0
    budget = int(max_batch_seconds * model.sample_rate) if max_batch_seconds else None
    stats = {"clips": 0, "audio_samples": 0, "fed_samples": 0, "batches": 0}

    # Headers only, before any embedding: a wrong rate or an empty clip stops the job now.
    all_lengths = {
        split: {
            n: clip_frames(task.audio_dir(model.sample_rate, split) / n, model.sample_rate)
            for n in sorted(task.labels(split))
        }
        for split in task.splits
    }
    empty = [f"{split}/{n}" for split, ls in all_lengths.items() for n, x in ls.items() if x == 0]
    if empty:
        raise AudioError(
            f"{task.name}: {len(empty)} clip(s) without samples at {model.sample_rate} Hz, e.g. {empty[:3]}; "
            "re-extract the task (delete its data/tasks folders and rerun) or remove them from the split's labels"
        )
    shards = ShardStore(
        shard_dir(out_dir),
        {
            "module": module,
            "options": options,
            "task": task.name,
            "precision": precision,
            "batch_size": batch_size,
            "max_padding": pad,
            "max_batch_samples": budget,
            "sample_rate": model.sample_rate,
            "scene_groups": list(scene_groups) if scene else [],
        },
    )
    with atomic_path(out_dir) as tmp:
        n_layers = None
        for split in task.splits:
            audio_dir = task.audio_dir(model.sample_rate, split)
            names = sorted(task.labels(split))
            lengths = all_lengths[split]
            batches = length_batches(lengths, batch_size, max_padding=pad, max_batch_samples=budget)
            views: dict[str, dict[str, np.ndarray]] = defaultdict(dict)
            stamps: dict[str, np.ndarray] = {}
            bar = tqdm(total=len(names), desc=f"{task.name}/{split}", unit="clip", disable=not progress)
            for index, batch in enumerate(batches):
                result = shards.load(split, index, batch)
                if result is None:
                    result = _embed_batch(mod, model, audio_dir, batch, scene, autocast, task.name, scene_groups)
                    shards.save(split, index, batch, result)
                n_layers = int(result["n_layers"])
                if scene:
                    per_layer = result["per_layer"]  # [L, n, D]
                    for i, name in enumerate(batch):
                        views["last"][name] = per_layer[-1, i]
                        views["fusion"][name] = per_layer[:, i].mean(axis=0)
                        if n_layers > 1:
                            for layer in range(n_layers):
                                views[f"layers/{layer:02d}"][name] = per_layer[layer, i]
                        for groups in scene_groups:
                            pooled = result[f"groups{groups}"]  # [2, n, N * D]
                            views[group_view("last", groups)][name] = pooled[0, i]
                            views[group_view("fusion", groups)][name] = pooled[1, i]
                else:
                    for i, name in enumerate(batch):
                        views["last"][name] = result[f"last_{i}"]
                        views["fusion"][name] = result[f"fusion_{i}"]
                        stamps[name] = result[f"ts_{i}"]
                longest = max(lengths[n] for n in batch)
                stats["batches"] += 1
                stats["clips"] += len(batch)
                stats["audio_samples"] += sum(lengths[n] for n in batch)
                stats["fed_samples"] += longest * len(batch)
                bar.update(len(batch))
            bar.close()
            for view, by_name in views.items():
                view_dir = tmp / view
                hear.copy_task_files(task, view_dir)
                hear.write_split(
                    view_dir,
                    task,
                    split,
                    names,
                    [by_name[n] for n in names],
                    [stamps[n] for n in names] if task.is_event else None,
                )
        fed = stats["fed_samples"]
        write_json(
            tmp / "provenance.json",
            {
                **(provenance or {}),
                "module": module,
                "options": options,
                "task": task.name,
                "checkpoint": model.checkpoint,
                **model.provenance,
                "stand_in": bool(model.stand_in),
                "sample_rate": model.sample_rate,
                "embedding_size": model.timestamp_embedding_size,
                "hidden_states": n_layers,
                "scene_groups": list(scene_groups) if scene else [],
                "embedding_type": task.embedding_type,
                "device": str(dev),
                "precision": precision if dev.type == "cuda" else "float32",
                "batches": stats["batches"],
                "padding_waste": round(1.0 - stats["audio_samples"] / fed, 6) if fed else 0.0,
                "audio_seconds": round(stats["audio_samples"] / model.sample_rate, 3),
                **result_provenance(),
            },
        )
        log_run(task.name, start, shards_reused=shards.reused, shards_computed=shards.computed)
    shards.clear()  # the output is complete: partial results are no longer needed
    log.info("%s: %d batches computed, %d reused from an interrupted run", task.name, shards.computed, shards.reused)
    return out_dir


def _embed_batch(
    mod: ModelModule,
    model: EmbeddingModel,
    audio_dir: Path,
    batch: list[str],
    scene: bool,
    autocast,
    task_name: str,
    scene_groups=(),
) -> dict:
    """Embed one batch: {"n_layers", "per_layer" [L, n, D], "groupsN" [2, n, N * D]} (scene) or
    per clip {"last_i" [T, D], "fusion_i" [T, D], "ts_i" [T]} (event), float32 numpy."""
    import torch

    clips = []
    for name in batch:
        clip = read_clip(audio_dir / name, model.sample_rate)
        if len(clip) == 0:
            raise AudioError(f"{task_name}: {audio_dir / name} has no samples; re-extract the task or drop the clip")
        minimum = model.min_samples
        if len(clip) < minimum:
            log.warning(
                "%s: %s has %d samples, fewer than the model's minimum %d: zero-padded",
                task_name,
                name,
                len(clip),
                minimum,
            )
            clip = np.pad(clip, (0, minimum - len(clip)))
        clips.append(clip)
    sizes = [len(c) for c in clips]
    audio = torch.zeros(len(clips), max(sizes))  # zero padding to the batch's longest clip
    for i, clip in enumerate(clips):
        audio[i, : len(clip)] = torch.from_numpy(clip)
    del clips[:]  # the batch tensor holds the audio now
    valid = [model.n_frames(n, scene=scene) for n in sizes]
    reference = [reference_frames(n, model.sample_rate) for n in sizes] if scene and scene_groups else None
    acc = _Views(len(batch), valid, scene, scene_groups, reference)
    n_layers = 0
    with autocast:
        for chunk_start, hidden, ts in mod.iter_layers(audio, model, scene=scene, lengths=sizes):
            n_layers = hidden.shape[0]
            acc.add(chunk_start, hidden, ts)
    out: dict[str, np.ndarray] = {"n_layers": np.array(n_layers)}
    if scene:
        out["per_layer"] = acc.scene_means().numpy()
        for groups in scene_groups:
            out[f"groups{groups}"] = acc.group_means(groups).numpy()
    else:
        for i in range(len(batch)):
            last, fusion, ts_i = acc.event_frames(i)
            out[f"last_{i}"], out[f"fusion_{i}"], out[f"ts_{i}"] = last.numpy(), fusion.numpy(), ts_i.numpy()
    for key, value in out.items():
        if value.dtype.kind == "f" and not np.isfinite(value).all():
            raise FloatingPointError(
                f"{task_name}: non-finite embeddings ({key}) for clips {batch} of {audio_dir}; nothing was written"
            )
    return out


def shard_dir(out_dir: Path) -> Path:
    """Where finished batches of an unfinished job wait (beside the output, removed on success)."""
    return out_dir.parent / f".{out_dir.name}.shards"


class ShardStore:
    """Finished batches of one embedding job, so a killed job resumes where it stopped.

    Each batch is one `.npz` written atomically; `manifest.json` holds the job's settings,
    and shards written under other settings are discarded rather than reused.
    """

    def __init__(self, root: Path, settings: dict):
        import json

        self.root = root
        self.reused = self.computed = 0
        manifest = json.dumps(settings, sort_keys=True, default=str)
        mpath = root / "manifest.json"
        if root.is_dir() and (not mpath.is_file() or mpath.read_text() != manifest):
            log.info("%s: shards from other settings, discarded", root)
            shutil.rmtree(root)
        if not root.is_dir():
            root.mkdir(parents=True)
            with atomic_path(mpath) as tmp:
                tmp.write_text(manifest)

    def _path(self, split: str, index: int) -> Path:
        return self.root / f"{split}-{index:06d}.npz"

    def load(self, split: str, index: int, batch: list[str]) -> dict | None:
        path = self._path(split, index)
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                if list(data["names"]) != list(batch):
                    return None
                out = {k: data[k] for k in data.files if k != "names"}
        except (OSError, ValueError, KeyError) as err:  # a damaged shard is recomputed
            log.warning("%s: unreadable shard (%s), recomputed", path, err)
            return None
        self.reused += 1
        return out

    def save(self, split: str, index: int, batch: list[str], result: dict) -> None:
        with atomic_path(self._path(split, index)) as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, names=np.array(batch), **result)
        self.computed += 1

    def clear(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
