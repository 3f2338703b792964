"""HEAR-API embedding models.

Every module here is a HEAR-API module (`load_model`, `get_timestamp_embeddings`,
`get_scene_embeddings`) and also exposes `embed_layers(audio, model)`, the single forward
pass the pipeline runs per clip: it returns every hidden state, so "last", "fusion" and
per-layer views are data, chosen downstream, never separate model runs.

Modules are named in params.yaml (`models.<name>.module`) and imported lazily, so that
planning a workflow never imports torch.
"""

from __future__ import annotations

import importlib
from types import ModuleType

MODULES = {
    "ssl": "hearflow.models.ssl",
    "crepe": "hearflow.models.crepe",
    "logmel": "hearflow.models.logmel",
    "passt": "hearflow.models.passt",
}


def import_module(kind: str) -> ModuleType:
    """Import the HEAR-API module registered under `kind` (e.g. "ssl", "crepe")."""
    if kind not in MODULES:
        raise ValueError(f"unknown model module {kind!r}; known: {sorted(MODULES)}")
    return importlib.import_module(MODULES[kind])
