"""What every HEAR-API module here shares: layer selection, devices, scene pooling."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Union

import torch

Layer = Union[str, int]  # "last" | "fusion" | a hidden-state index (0 = input embedding)


def parse_layer(layer: Layer) -> Layer:
    """Normalise a layer option from params ("last", "fusion", 3, "3")."""
    if isinstance(layer, int):
        return layer
    if isinstance(layer, str) and layer.lstrip("-").isdigit():
        return int(layer)
    if layer in ("last", "fusion"):
        return layer
    raise ValueError(f"layer must be 'last', 'fusion' or an integer index, got {layer!r}")


def select_layer(hidden: torch.Tensor, layer: Layer) -> torch.Tensor:
    """hidden [L, n, T, D] -> [n, T, D]: the last state, the mean of all (fusion), or one."""
    layer = parse_layer(layer)
    if layer == "last":
        return hidden[-1]
    if layer == "fusion":
        return hidden.mean(dim=0)
    if not -hidden.shape[0] <= layer < hidden.shape[0]:
        raise ValueError(f"layer {layer} out of range for {hidden.shape[0]} hidden states")
    return hidden[layer]


def folder_digest(folder: str | Path) -> str:
    """sha256 over a local checkpoint folder: every file's relative path and bytes, sorted."""
    folder = Path(folder)
    h = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        h.update(str(path.relative_to(folder)).encode() + b"\0")
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    return "sha256:" + h.hexdigest()


def checkpoint_revision(name: str) -> str:
    """What exactly was loaded: a local folder's digest, or the Hugging Face cache snapshot's
    commit hash of a hub id (read from the cache, no network)."""
    if Path(name).is_dir():
        return folder_digest(name)
    from huggingface_hub import try_to_load_from_cache

    try:
        cached = try_to_load_from_cache(name, "config.json")
    except ValueError:  # not a valid hub id (e.g. a folder that does not exist)
        return "unknown"
    if isinstance(cached, str):  # <cache>/models--org--name/snapshots/<commit>/config.json
        return Path(cached).parent.name
    return "unknown"


def as_batch(audio: torch.Tensor, sample_rate: int, min_samples: int = 1) -> torch.Tensor:
    """Check HEAR input audio [n_sounds, n_samples] float in [-1, 1]; return float32."""
    if audio.ndim != 2:
        raise ValueError(f"audio must be [n_sounds, n_samples], got shape {tuple(audio.shape)}")
    if audio.shape[1] < min_samples:
        raise ValueError(
            f"clips of {audio.shape[1]} samples are shorter than the model's window "
            f"({min_samples} samples at {sample_rate} Hz); pad them first"
        )
    return audio.to(torch.float32)


# --- streaming: every module yields its hidden states chunk by chunk -------------------------
#
# `iter_layers(audio, model, scene=..., lengths=...)` is the one forward pass of a module. It
# yields `(start, hidden, ts)` per chunk of frames: `start` is the index of the chunk's first
# frame, `hidden` [L, n, t, D] float32 on the CPU, `ts` [t] the frame centres in ms. Memory is
# bounded by the chunk, not the clip, so a 10-minute clip costs little more than a 10-second
# one; callers that want everything at once use `embed_layers` below.


def collect(chunks) -> tuple[torch.Tensor, torch.Tensor]:
    """Concatenate the chunks of `iter_layers`: (hidden [L, n, T, D], ts [T])."""
    hidden, stamps = [], []
    for _, h, ts in chunks:
        hidden.append(h)
        stamps.append(ts)
    return torch.cat(hidden, dim=2), torch.cat(stamps)


def chunk_spans(n_frames: int, chunk: int, context: int) -> list[tuple[int, int, int, int]]:
    """Split frames [0, n_frames) into cores of `chunk` frames with `context` frames each side.

    Returns (core_start, core_end, input_start, input_end) per chunk; a clip that fits in one
    chunk is one span with no context, so short clips are computed exactly as a whole.
    """
    if n_frames <= chunk:
        return [(0, n_frames, 0, n_frames)]
    return [
        (a, min(a + chunk, n_frames), max(0, a - context), min(n_frames, a + chunk + context))
        for a in range(0, n_frames, chunk)
    ]


def mean_over_time(chunks, layer: Layer) -> torch.Tensor:
    """Scene pooling of a chunk stream without holding all frames: [n, D] of `layer`."""
    total, count = None, 0
    for _, hidden, _ in chunks:
        part = select_layer(hidden, layer).sum(dim=1).double()  # [n, D]: float32 within a chunk
        total = part if total is None else total + part
        count += hidden.shape[2]
    return (total / count).float()
