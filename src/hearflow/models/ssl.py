"""wav2vec 2.0 and HuBERT as HEAR-API modules, through `transformers`.

    model = load_model(checkpoint="facebook/hubert-xlarge-ll60k", layer="fusion")
    emb, ts = get_timestamp_embeddings(audio, model)   # audio [n, samples] at 16 kHz

As in the NTU-GURA submission: raw 16 kHz waveform in, no normaliser, no attention mask;
"fusion" is the mean of ALL hidden states (the input-embedding output included), "last" the
last one. Frames are 20 ms apart and centred at 12.5 + 20 k ms (400-sample receptive field,
320-sample stride for the standard convolutional front end; both are read from the config).
"""

from __future__ import annotations

import os
from math import prod

import torch

from hearflow.models.common import Layer, as_batch, default_device, parse_layer, select_layer

SAMPLE_RATE = 16000


class MissingCheckpointError(RuntimeError):
    """A checkpoint is neither local nor downloadable."""


class SSLModel(torch.nn.Module):
    """A wav2vec2/HuBERT encoder plus the HEAR attributes."""

    sample_rate = SAMPLE_RATE

    def __init__(self, net: torch.nn.Module, checkpoint: str, layer: Layer, stand_in: bool):
        super().__init__()
        self.net = net.eval()
        self.checkpoint = checkpoint
        self.layer = parse_layer(layer)
        self.stand_in = stand_in
        cfg = net.config
        self.scene_embedding_size = self.timestamp_embedding_size = int(cfg.hidden_size)
        self.num_hidden_states = int(cfg.num_hidden_layers) + 1
        strides, kernels = list(cfg.conv_stride), list(cfg.conv_kernel)
        self.hop = prod(strides)  # samples between frames
        # Receptive field of one frame: each kernel widens it by (k-1) input strides.
        self.window = 1 + sum((k - 1) * prod(strides[:i]) for i, k in enumerate(kernels))

    @property
    def device(self) -> torch.device:
        return next(self.net.parameters()).device

    def n_frames(self, n_samples: int) -> int:
        return (n_samples - self.window) // self.hop + 1

    def timestamps(self, n_samples: int) -> torch.Tensor:
        """Centre of each frame, ms [T]."""
        k = torch.arange(self.n_frames(n_samples), dtype=torch.float64)
        return ((self.window / 2 + k * self.hop) * 1000.0 / self.sample_rate).to(torch.float32)


def load_model(
    model_file_path: str = "",
    *,
    checkpoint: str = "",
    layer: Layer = "fusion",
    device: str | None = None,
    stand_in: bool = False,
) -> SSLModel:
    """Load a wav2vec2/HuBERT checkpoint (hub id or local folder) for embedding.

    `model_file_path` (HEAR's argument) and `checkpoint` are synonyms; `layer` selects what
    the HEAR functions return ("last", "fusion" or a hidden-state index); `stand_in` marks a
    randomly initialised stand-in so that every output says so.
    """
    from transformers import AutoModel

    name = model_file_path or checkpoint
    if not name:
        raise ValueError("ssl.load_model needs a checkpoint (hub id or local folder)")
    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")
    try:
        net = AutoModel.from_pretrained(name, local_files_only=offline)
    except OSError as err:
        raise MissingCheckpointError(
            f"cannot load checkpoint {name!r}: {err}\n"
            "Provide it in one of these ways: download it into the Hugging Face cache on a "
            f"machine with network access (`hf download {name}`) and share HF_HOME; or put "
            "the model folder (config.json + weights) in a local folder and set "
            "models.<name>.options.checkpoint to its path in params.yaml. With a populated "
            "cache, set HF_HUB_OFFLINE=1 to skip network look-ups."
            + (" HF_HUB_OFFLINE is set, so no download was attempted." if offline else "")
        ) from err
    model = SSLModel(net, name, layer, stand_in)
    return model.to(default_device(device))


@torch.no_grad()
def embed_layers(
    audio: torch.Tensor, model: SSLModel, *, scene: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """One forward pass: every hidden state and the frame timestamps.

    audio [n, samples] float in [-1, 1] at 16 kHz, all clips the same length (no attention
    mask, so padding would change the result: batch clips of equal length only).
    Returns hidden [L, n, T, D] float32 on the CPU and timestamps [n, T] in ms.
    `scene` is accepted for a uniform interface; the frame rate does not change with it.
    """
    audio = as_batch(audio, model.sample_rate, min_samples=model.window)
    out = model.net(audio.to(model.device), output_hidden_states=True)
    hidden = torch.stack(out.hidden_states, dim=0).float().cpu()  # [L, n, T, D]
    ts = model.timestamps(audio.shape[1]).expand(audio.shape[0], -1)
    return hidden, ts


def get_timestamp_embeddings(
    audio: torch.Tensor, model: SSLModel
) -> tuple[torch.Tensor, torch.Tensor]:
    """HEAR API: ([n, T, D] float32 of the model's `layer`, timestamps [n, T] ms)."""
    hidden, ts = embed_layers(audio, model)
    return select_layer(hidden, model.layer), ts


def get_scene_embeddings(audio: torch.Tensor, model: SSLModel) -> torch.Tensor:
    """HEAR API: [n, D], the time mean of the model's `layer`."""
    hidden, _ = embed_layers(audio, model, scene=True)
    return select_layer(hidden, model.layer).mean(dim=1)
