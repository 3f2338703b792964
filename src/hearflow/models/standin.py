"""Tiny randomly initialised wav2vec2/HuBERT checkpoints: the demo suite's "untrained stand-ins".

They have the architecture of the real large models (layer-norm convolutional front end,
stable layer norm, 400-sample window, 320-sample hop) at a fraction of the width and depth,
are saved with `save_pretrained`, and are then loaded by `hearflow.models.ssl` through
exactly the code path that loads the real checkpoints. Nothing they produce is a result
about the real models: every output that uses them carries `stand_in: true`.
"""

from __future__ import annotations

import json
from pathlib import Path

from hearflow.io import atomic_path

ARCHITECTURES = ("wav2vec2", "hubert")
CHECKPOINTS = Path(__file__).resolve().parents[3] / "catalog" / "checkpoints.yaml"
_NOT_CONFIG = ("model_type", "hidden_states")  # catalog facts that are no config keys


def checkpoint_facts(checkpoint: str) -> dict:
    """The architecture facts of a real checkpoint, from catalog/checkpoints.yaml (sourced)."""
    import yaml

    facts = yaml.safe_load(CHECKPOINTS.read_text())["checkpoints"]
    if checkpoint not in facts:
        raise KeyError(f"{checkpoint!r} is not in {CHECKPOINTS} (known: {sorted(facts)})")
    return facts[checkpoint]


def architecture_config(checkpoint: str):
    """A `transformers` config of a real checkpoint's full-size architecture (no weights):
    with it, a randomly initialised model of the real size runs where the hub cannot be reached."""
    from transformers import HubertConfig, Wav2Vec2Config

    facts = checkpoint_facts(checkpoint)
    cls = {"hubert": HubertConfig, "wav2vec2": Wav2Vec2Config}[facts["model_type"]]
    return cls(**{k: v for k, v in facts.items() if k not in _NOT_CONFIG})


def standin_config(arch: str, *, hidden_size: int, num_hidden_layers: int, conv_dim: int):
    """A `transformers` config for a tiny model of the large models' shape."""
    from transformers import HubertConfig, Wav2Vec2Config

    if arch not in ARCHITECTURES:
        raise ValueError(f"stand-in architecture must be one of {ARCHITECTURES}, got {arch!r}")
    cls = Wav2Vec2Config if arch == "wav2vec2" else HubertConfig
    return cls(
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


def build_standin(
    arch: str,
    out_dir: str | Path,
    *,
    seed: int,
    hidden_size: int = 32,
    num_hidden_layers: int = 4,
    conv_dim: int = 32,
) -> Path:
    """Write a seeded, randomly initialised checkpoint folder (config + safetensors)."""
    import torch
    from transformers import HubertModel, Wav2Vec2Model

    cfg = standin_config(
        arch, hidden_size=hidden_size, num_hidden_layers=num_hidden_layers, conv_dim=conv_dim
    )
    torch.manual_seed(seed)
    net = (Wav2Vec2Model if arch == "wav2vec2" else HubertModel)(cfg).eval()
    out_dir = Path(out_dir)
    with atomic_path(out_dir) as tmp:
        net.save_pretrained(tmp)
        (tmp / "STAND_IN.json").write_text(
            json.dumps(
                {"stand_in": True, "note": "untrained stand-in, random weights", "arch": arch, "seed": seed},
                indent=2,
            )
            + "\n"
        )
    return out_dir
