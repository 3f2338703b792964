"""What every HEAR-API module here shares: layer selection, devices, scene pooling."""

from __future__ import annotations

from typing import Union

import torch

Layer = Union[str, int]  # "last" | "fusion" | a hidden-state index (0 = input embedding)


def default_device(device: str | None = None) -> torch.device:
    """The requested device, else CUDA when present, else CPU."""
    if device:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


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
