"""One forward pass per (model, clip): every view the ablations and layer analyses need.

    embed_task(Path("data/tasks/16000/demo_tones-v1-full"), Path("results/members/crepe_tiny/demo_tones-v1-full"),
               module="crepe", options={"capacity": "tiny"})

Writes, in heareval's format (one directory per view, each a complete embedding dir):

    <out>/last/           last hidden state   (scene: time mean; event: frames + timestamps)
    <out>/fusion/         mean of all hidden states
    <out>/layers/<NN>/    scene tasks only: time mean of hidden state NN (layer analysis)
    <out>/provenance.json model, options, stand-in flag, wall time, host, Slurm job

Scene tasks are embedded with the model's scene settings (CREPE: 250 ms hop), event tasks
with its timestamp settings (CREPE: 50 ms hop); each task needs only one of the two.
"""

from __future__ import annotations

import logging
import os
import platform
import socket
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from hearflow import hear
from hearflow.audio import read_clip
from hearflow.io import atomic_path, write_json

log = logging.getLogger(__name__)


def length_batches(lengths: dict[str, int], batch_size: int) -> list[list[str]]:
    """Group clip names into batches of identical length, at most `batch_size` each.

    The SSL models run without an attention mask, so only equal-length clips may share a
    batch (padding would change their output); HEAR tasks mostly have a fixed duration.
    """
    by_len: dict[int, list[str]] = defaultdict(list)
    for name in sorted(lengths):
        by_len[lengths[name]].append(name)
    return [
        names[i : i + batch_size]
        for _, names in sorted(by_len.items())
        for i in range(0, len(names), batch_size)
    ]


def embed_task(
    task_dir: Path,
    out_dir: Path,
    *,
    module: str,
    options: dict,
    batch_size: int = 16,
    device: str | None = None,
    progress: bool = True,
    provenance: dict | None = None,
) -> Path:
    """Embed every clip of every split of one task with one model; see the module doc."""
    import torch
    from tqdm import tqdm

    from hearflow.models import import_module

    start = time.time()
    mod = import_module(module)
    model = mod.load_model(**options, device=device)  # fails before any audio is read
    task = hear.Task.load(task_dir)
    hear.check_task_layout(task, model.sample_rate)
    scene = not task.is_event

    with atomic_path(out_dir) as tmp:
        n_layers = None
        for split in task.splits:
            audio_dir = task.audio_dir(model.sample_rate, split)
            clips = {name: read_clip(audio_dir / name, model.sample_rate) for name in sorted(task.labels(split))}
            views: dict[str, dict[str, np.ndarray]] = defaultdict(dict)
            stamps: dict[str, np.ndarray] = {}
            bar = tqdm(total=len(clips), desc=f"{task.name}/{split}", unit="clip", disable=not progress)
            for batch in length_batches({k: len(v) for k, v in clips.items()}, batch_size):
                audio = torch.from_numpy(np.stack([clips[n] for n in batch]))
                hidden, ts = mod.embed_layers(audio, model, scene=scene)  # [L, n, T, D], [n, T]
                n_layers = hidden.shape[0]
                if scene:
                    per_layer = hidden.mean(dim=2)  # [L, n, D]: time mean of every state
                    for i, name in enumerate(batch):
                        views["last"][name] = per_layer[-1, i].numpy()
                        views["fusion"][name] = per_layer[:, i].mean(dim=0).numpy()
                        if n_layers > 1:
                            for layer in range(n_layers):
                                views[f"layers/{layer:02d}"][name] = per_layer[layer, i].numpy()
                else:
                    fusion = hidden.mean(dim=0)  # [n, T, D]
                    for i, name in enumerate(batch):
                        views["last"][name] = hidden[-1, i].numpy()
                        views["fusion"][name] = fusion[i].numpy()
                        stamps[name] = ts[i].numpy()
                bar.update(len(batch))
            bar.close()
            names = sorted(clips)
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
        write_json(
            tmp / "provenance.json",
            {
                **(provenance or {}),
                "module": module,
                "options": options,
                "task": task.name,
                "checkpoint": getattr(model, "checkpoint", None),
                "stand_in": bool(getattr(model, "stand_in", False)),
                "sample_rate": model.sample_rate,
                "embedding_size": model.timestamp_embedding_size,
                "hidden_states": n_layers,
                "embedding_type": task.embedding_type,
                **run_environment(start),
            },
        )
    return out_dir


def run_environment(start: float) -> dict:
    """Where and how long a job ran (for provenance; excluded from result hashes)."""
    return {
        "wall_seconds": round(time.time() - start, 3),
        "host": socket.gethostname(),
        "python": platform.python_version(),
        "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
    }
