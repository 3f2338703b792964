"""wav2vec 2.0 and HuBERT as HEAR-API modules, through `transformers`.

    model = load_model(checkpoint="facebook/hubert-xlarge-ll60k", layer="fusion")
    emb, ts = get_timestamp_embeddings(audio, model)   # audio [n, samples] at 16 kHz

As in the NTU-GURA submission: raw 16 kHz waveform in, no normaliser, no attention mask for
clips of equal length; "fusion" is the mean of ALL hidden states (the input-embedding output
included), "last" the last one, `last_hidden_state`, after the encoder's final LayerNorm:
the hidden states are listed as transformers 4.x (the authors' 4.11.3) listed them, not as
5.x does (`hidden_state_list`). Frames are 20 ms apart and centred at 12.5 + 20 k ms
(400-sample receptive field, 320-sample stride for the standard convolutional front end;
both are read from the config).

Long clips are cut into chunks of `chunk_seconds` of frames, each run with `context_seconds`
of audio either side whose frames are dropped, so memory stays bounded (a 10-minute Beehive
clip never meets a 30 000-frame attention matrix). Chunk inputs start on the frame grid, so
the convolutional front end sees exactly the samples it would in one pass; only attention is
limited to chunk + context. Clips up to one chunk are computed in one pass, as in the paper.

Clips of different lengths may share a batch when the checkpoint has a layer-norm front end
(`feat_extract_norm="layer"`, as the large and xlarge checkpoints do): they are zero-padded
and an attention mask hides the padding, which leaves every real frame as computed alone
(`pads_exactly`). Group-norm front ends (base checkpoints) normalise over time, so for them
only clips of equal length share a batch.
"""

from __future__ import annotations

import os
from math import prod
from pathlib import Path

import torch

from hearflow.core.devices import default_device
from hearflow.embed.models import ModelSpec
from hearflow.embed.models.common import (
    Layer,
    as_batch,
    checkpoint_revision,
    chunk_spans,
    collect,
    mean_over_time,
    parse_layer,
    select_layer,
)

SPEC = ModelSpec(sample_rate=16000, per_layer=True, examples=("wav2vec2", "hubert"))
SAMPLE_RATE = SPEC.sample_rate
HIDDEN_STATES_CONVENTION = (
    "transformers 4.x list: input embedding, layer outputs, last term = last_hidden_state "
    "(after the encoder's final LayerNorm)"
)


class MissingCheckpointError(RuntimeError):
    """A checkpoint is neither local nor downloadable."""


class SSLModel(torch.nn.Module):
    """A wav2vec2/HuBERT encoder plus the HEAR attributes."""

    sample_rate = SAMPLE_RATE

    def __init__(
        self,
        net: torch.nn.Module,
        checkpoint: str,
        layer: Layer,
        stand_in: bool,
        chunk_seconds: float = 30.0,
        context_seconds: float = 2.0,
    ):
        super().__init__()
        self.net = net.eval()
        self.checkpoint = checkpoint
        self.layer = parse_layer(layer)
        self.stand_in = stand_in
        cfg = net.config
        if chunk_seconds <= 0 or context_seconds < 0:
            raise ValueError(
                f"chunk_seconds must be > 0 and context_seconds >= 0, got {chunk_seconds}, {context_seconds}"
            )
        self.pads_exactly = getattr(cfg, "feat_extract_norm", "group") == "layer"
        self.scene_embedding_size = self.timestamp_embedding_size = int(cfg.hidden_size)
        self.num_hidden_states = int(cfg.num_hidden_layers) + 1
        strides, kernels = list(cfg.conv_stride), list(cfg.conv_kernel)
        self.hop = prod(strides)  # samples between frames
        # Receptive field of one frame: each kernel widens it by (k-1) input strides.
        self.window = 1 + sum((k - 1) * prod(strides[:i]) for i, k in enumerate(kernels))
        self.min_samples = self.window  # one frame
        self.chunk_frames = max(1, round(chunk_seconds * self.sample_rate / self.hop))
        self.context_frames = round(context_seconds * self.sample_rate / self.hop)
        # written into every member's provenance.json by the embedding job
        self.provenance = {
            "checkpoint_revision": checkpoint_revision(checkpoint),
            "hidden_states_convention": HIDDEN_STATES_CONVENTION,
            "stable_layer_norm": bool(getattr(cfg, "do_stable_layer_norm", False)),
        }

    @property
    def device(self) -> torch.device:
        return next(self.net.parameters()).device

    def n_frames(self, n_samples: int, scene: bool = False) -> int:
        """Frames of a clip of `n_samples` (the frame rate does not depend on `scene`)."""
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
    chunk_seconds: float = 30.0,
    context_seconds: float = 2.0,
) -> SSLModel:
    """Load a wav2vec2/HuBERT checkpoint (hub id or local folder) for embedding.

    `model_file_path` (HEAR's argument) and `checkpoint` are synonyms; `layer` selects what
    the HEAR functions return ("last", "fusion" or a hidden-state index); `stand_in` marks a
    randomly initialised stand-in so that every output says so; clips longer than
    `chunk_seconds` are embedded in chunks with `context_seconds` of context (module doc).
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
    model = SSLModel(net, name, layer, stand_in, chunk_seconds, context_seconds)
    return model.to(default_device(device))


STANDIN_ARCHITECTURES = ("wav2vec2", "hubert")


def standin_network(
    arch: str, *, seed: int, hidden_size: int, num_hidden_layers: int, conv_dim: int
) -> torch.nn.Module:
    """A seeded, randomly initialised wav2vec2/HuBERT encoder of the large checkpoints' shape
    (layer-norm front end, stable layer norm, 400-sample window, 320-sample hop) at a fraction
    of their width and depth: the demo suite's stand-ins (hearflow.embed.models.standin) and SPEC.examples."""
    from transformers import HubertConfig, HubertModel, Wav2Vec2Config, Wav2Vec2Model

    if arch not in STANDIN_ARCHITECTURES:
        raise ValueError(f"stand-in architecture must be one of {STANDIN_ARCHITECTURES}, got {arch!r}")
    config, model = (Wav2Vec2Config, Wav2Vec2Model) if arch == "wav2vec2" else (HubertConfig, HubertModel)
    cfg = config(
        hidden_size=hidden_size,
        num_hidden_layers=num_hidden_layers,
        num_attention_heads=max(1, hidden_size // 16),
        intermediate_size=2 * hidden_size,
        conv_dim=(conv_dim,) * 7,
        conv_kernel=(10, 3, 3, 3, 3, 2, 2),
        conv_stride=(5, 2, 2, 2, 2, 2, 2),
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=4,
        feat_extract_norm="layer",
        do_stable_layer_norm=True,
        hidden_dropout=0.0,
        attention_dropout=0.0,
        activation_dropout=0.0,
        feat_proj_dropout=0.0,
        layerdrop=0.0,
    )
    torch.manual_seed(seed)
    return model(cfg).eval()


def example(name: str, folder: Path) -> dict:
    """load_model options of the instances tests/test_models.py checks: tiny seeded stand-ins
    of the wav2vec2 and HuBERT architectures ("wav2vec2", "hubert"), saved under `folder`."""
    path = Path(folder) / name
    standin_network(name, seed=7, hidden_size=32, num_hidden_layers=3, conv_dim=16).save_pretrained(path)
    return {"checkpoint": str(path), "layer": "fusion", "device": "cpu", "stand_in": True}


def hidden_state_list(out) -> tuple[torch.Tensor, ...]:
    """The hidden states as transformers 4.x listed them, which the authors (4.11.3) used:
    the input embedding, each layer's output, and as the last term `last_hidden_state`.

    transformers 5.x takes `hidden_states[-1]` *before* the encoder's final LayerNorm in
    stable-layer-norm models (all three HEAR checkpoints; `tie_last_hidden_states=False`),
    where 4.x appended it after that norm, so that it equalled `last_hidden_state`. For
    other encoders the two are the same tensor and this changes nothing.
    """
    return (*out.hidden_states[:-1], out.last_hidden_state)


@torch.no_grad()
def iter_layers(audio: torch.Tensor, model: SSLModel, *, scene: bool = False, lengths=None):
    """One forward pass, chunk by chunk: yields (start frame, hidden [L, n, t, D], ts [t] ms).

    audio [n, samples] float in [-1, 1] at 16 kHz. `lengths` (samples per clip, default all
    full) marks zero padding; clips of different lengths need `model.pads_exactly`. Frames
    past a clip's own `n_frames(length)` are padding and must be dropped by the caller.
    `scene` is accepted for a uniform interface; the frame rate does not change with it.
    """
    audio = as_batch(audio, model.sample_rate, min_samples=model.window)
    n, total = audio.shape
    mask = None
    if lengths is not None and any(int(x) != total for x in lengths):
        if not model.pads_exactly:
            raise ValueError(
                f"{model.checkpoint}: a group-norm front end normalises over time, so padded clips "
                "would change; batch clips of equal length only"
            )
        if min(int(x) for x in lengths) < model.window:
            raise ValueError(f"clips shorter than the model's window ({model.window} samples); pad them first")
        mask = (torch.arange(total)[None, :] < torch.as_tensor([int(x) for x in lengths])[:, None]).long()
    stamps = model.timestamps(total)
    for a, b, ai, bi in chunk_spans(model.n_frames(total), model.chunk_frames, model.context_frames):
        lo, hi = ai * model.hop, (bi - 1) * model.hop + model.window
        kwargs = {} if mask is None else {"attention_mask": mask[:, lo:hi].to(model.device)}
        out = model.net(audio[:, lo:hi].to(model.device), output_hidden_states=True, **kwargs)
        hidden = torch.stack(hidden_state_list(out), dim=0)[:, :, a - ai : b - ai].float().cpu()
        yield a, hidden, stamps[a:b]


def embed_layers(audio: torch.Tensor, model: SSLModel, *, scene: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Every hidden state of clips of equal length: hidden [L, n, T, D] float32 on the CPU
    and timestamps [n, T] in ms (all chunks of `iter_layers` joined)."""
    hidden, ts = collect(iter_layers(audio, model, scene=scene))
    return hidden, ts.expand(hidden.shape[1], -1)


def get_timestamp_embeddings(audio: torch.Tensor, model: SSLModel) -> tuple[torch.Tensor, torch.Tensor]:
    """HEAR API: ([n, T, D] float32 of the model's `layer`, timestamps [n, T] ms)."""
    hidden, ts = embed_layers(audio, model)
    return select_layer(hidden, model.layer), ts


def get_scene_embeddings(audio: torch.Tensor, model: SSLModel) -> torch.Tensor:
    """HEAR API: [n, D], the time mean of the model's `layer` (streamed over chunks)."""
    return mean_over_time(iter_layers(audio, model, scene=True), model.layer)
