"""Which torch device a job computes on; shared by the embedding and probe phases (torch is
imported on first call, so importing this costs nothing)."""

from __future__ import annotations


def default_device(device: str | None = None):
    """The requested device (a torch.device), else CUDA when present, else CPU."""
    import torch

    if device:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
