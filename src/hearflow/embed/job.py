"""One forward pass per (model, clip): every view the ablations and layer analyses need.

    embed_task(Path("data/tasks/16000/demo_tones-v1-full"), Path("results/members/crepe_tiny/demo_tones-v1-full"),
               module="crepe", options={"capacity": "tiny"})

Writes, in heareval's format (one directory per view, each a complete embedding dir):

    <out>/last/           last hidden state   (scene: time mean; event: frames + timestamps)
    <out>/fusion/         mean of all hidden states
    <out>/layers/<NN>/    scene tasks only: time mean of hidden state NN (layer analysis)
    <out>/groupsNN/{last,fusion}/  scene tasks only, for each N of `scene_groups`: the means
                          of N equal time groups joined group-major, [N * D] (hearflow.core.pooling)
    <out>/provenance.json model, options, checkpoint revision, stand-in flag, numerics

`embed_tasks` is a wide job (rule embed_wide): one model, loaded once, over every task of a
suite. Each task's finished batches are kept until the last task is done, so a wide job
killed in its fifth task reassembles the first four from their batches when it is restarted
(Snakemake removes a failed job's outputs) instead of embedding them again.

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

from hearflow.core import hear
from hearflow.core.audio import AudioError, clip_frames, read_clip
from hearflow.core.io import atomic_path, write_json
from hearflow.core.pooling import group_view, reference_frames
from hearflow.core.provenance import log_run, result_provenance
from hearflow.embed.shards import ShardStore, shard_dir
from hearflow.embed.views import ChunkViews

if TYPE_CHECKING:
    from hearflow.embed.models import EmbeddingModel, ModelModule

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
    loaded: tuple[ModelModule, EmbeddingModel] | None = None,
    keep_shards: bool = False,
) -> Path:
    """Embed every clip of every split of one task with one model; see the module doc.
    `loaded`: the (module, model) of `load_member` when the caller embeds several tasks with
    one model; `keep_shards`: leave the finished batches for the caller to clear (a wide job)."""
    import torch
    from tqdm import tqdm

    if precision not in PRECISIONS:
        raise ValueError(f"embed.precision must be one of {sorted(PRECISIONS)}, got {precision!r}")
    start = time.time()
    mod, model = loaded or load_member(module, options, device)  # before any audio is read
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
    if not keep_shards:
        shards.clear()  # the output is complete: partial results are no longer needed
    log.info("%s: %d batches computed, %d reused from an interrupted run", task.name, shards.computed, shards.reused)
    return out_dir


def job_settings(smk) -> dict:
    """The embed_task settings of an embedding job (rules embed and embed_wide pass the same
    params): every keyword argument of `embed_task` and `embed_tasks` but the paths."""
    return {
        "module": smk.params.module,
        "options": dict(smk.params.options),
        "batch_size": smk.params.batch_size,
        "max_padding": smk.params.max_padding,
        "max_batch_seconds": smk.params.max_batch_seconds,
        "precision": smk.params.precision,
        "device": smk.params.device,
        "scene_groups": list(smk.params.scene_groups),
        "provenance": {"model": smk.wildcards.model},
    }


def load_member(module: str, options: dict, device: str | None = None) -> tuple[ModelModule, EmbeddingModel]:
    """Import model module `module` and load its model with `options` on `device`; the time of
    each is logged."""
    from hearflow.embed.models import check_model, import_module

    start = time.time()
    mod = import_module(module)
    imported = time.time()
    model = check_model(mod.load_model(**options, device=device), module)
    log.info("%s: module imported in %.3f s, model loaded in %.3f s", module, imported - start, time.time() - imported)
    return mod, model


def embed_tasks(
    pairs: list[tuple[Path, Path]], *, module: str, options: dict, device: str | None = None, **settings
) -> list[Path]:
    """A wide job: `embed_task` on each (task_dir, out_dir) in order with one model, loaded
    once. Every task's finished batches stay on disk until the last task is written, so a
    restarted job reuses the tasks it had finished (module doc); `settings` are embed_task's."""
    loaded = load_member(module, options, device)
    for i, (task_dir, out_dir) in enumerate(pairs, 1):
        start = time.time()
        embed_task(
            task_dir,
            out_dir,
            module=module,
            options=options,
            device=device,
            loaded=loaded,
            keep_shards=True,
            **settings,
        )
        log.info("embed %d/%d %s: done in %.1f s", i, len(pairs), out_dir.name, time.time() - start)
    for _, out_dir in pairs:
        shutil.rmtree(shard_dir(out_dir), ignore_errors=True)  # every output is complete
    return [out for _, out in pairs]


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
    acc = ChunkViews(len(batch), valid, scene, scene_groups, reference)
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
