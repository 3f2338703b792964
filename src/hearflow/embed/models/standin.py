"""Tiny randomly initialised wav2vec2/HuBERT checkpoints: the demo suite's "untrained stand-ins".

They have the architecture of the real large models (layer-norm convolutional front end,
stable layer norm, 400-sample window, 320-sample hop) at a fraction of the width and depth
(`hearflow.embed.models.ssl.standin_network`), are saved with `save_pretrained`, and are then loaded by `hearflow.embed.models.ssl` through
exactly the code path that loads the real checkpoints. Nothing they produce is a result
about the real models: every output that uses them carries `stand_in: true`.
"""

from __future__ import annotations

import json
from pathlib import Path

from hearflow.core.io import atomic_path

CHECKPOINTS = Path(__file__).resolve().parents[4] / "catalog" / "checkpoints.yaml"
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


def build_standin(
    arch: str,
    out_dir: str | Path,
    *,
    seed: int,
    hidden_size: int = 32,
    num_hidden_layers: int = 4,
    conv_dim: int = 32,
    embed_dim: int = 32,
    depth: int = 2,
    num_heads: int = 2,
) -> Path:
    """Write a seeded, randomly initialised checkpoint folder: config + safetensors for
    wav2vec2/HuBERT (hidden_size, num_hidden_layers, conv_dim), a PaSST-S layout's state dict
    (`passt`: embed_dim, depth, num_heads; hearflow.embed.models.passt.load_standin reads it)."""
    if arch == "passt":
        from hearflow.embed.models.passt import save_standin

        sizes = {"embed_dim": embed_dim, "depth": depth, "num_heads": num_heads}
        return save_standin(Path(out_dir), sizes, seed=seed)
    from hearflow.embed.models.ssl import standin_network

    net = standin_network(
        arch, seed=seed, hidden_size=hidden_size, num_hidden_layers=num_hidden_layers, conv_dim=conv_dim
    )
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
