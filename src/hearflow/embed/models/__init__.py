"""HEAR-API embedding models: the registry of model modules and the contract they keep.

A model module is one file here that declares itself with a module-level

    SPEC = ModelSpec(sample_rate=16000, per_layer=True, examples=("wav2vec2", "hubert"))

and is then usable as `models.<name>.module: <file stem>` in params.yaml; nothing else lists
it. `registry()` reads these declarations by parsing the files (no import, so planning a
workflow never imports torch); the params schema's `module` enum, the plan's sample rates,
the layer-wise probes and the DVC code dependencies of embedding stages all come from it.

Every module is a HEAR-API module (`load_model`, `get_timestamp_embeddings`,
`get_scene_embeddings`) plus the streaming pass the pipeline runs per batch of clips:
`iter_layers` yields every hidden state chunk by chunk, so "last", "fusion" and per-layer
views are data, chosen downstream, never separate model runs. `ModelModule` and
`EmbeddingModel` below declare that contract; `import_module` and `check_model` enforce it.
"""

from __future__ import annotations

import ast
import importlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol, runtime_checkable

PACKAGE_DIR = Path(__file__).resolve().parent


@dataclass(frozen=True)
class ModelSpec:
    """What planning needs to know about a model module, declared in the module as `SPEC`.

    Literal values only: the registry reads them from the file's syntax tree."""

    sample_rate: int  # Hz of the audio the module takes (a `sample_rate` load_model option overrides it)
    per_layer: bool = False  # several hidden states: per-layer scene views and layer-wise probes
    # names of small offline instances `example(name, folder)` builds (tests/test_models.py)
    examples: tuple[str, ...] = ("default",)


@dataclass(frozen=True)
class RegisteredModule:
    """A model module found by the registry: its name (params `module`), file and spec."""

    name: str
    path: Path
    spec: ModelSpec

    @property
    def module(self) -> str:
        return f"{__name__}.{self.name}"


def _declared_spec(path: Path) -> ModelSpec | None:
    """The module-level `SPEC = ModelSpec(...)` of a file, or None where it has none."""
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in tree.body:
        targets = (
            node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        )
        if not any(isinstance(t, ast.Name) and t.id == "SPEC" for t in targets):
            continue
        call = node.value
        if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == "ModelSpec"):
            raise ValueError(f"{path}: SPEC must be assigned a ModelSpec(...) call")
        known = {f.name for f in fields(ModelSpec)}
        if call.args or any(k.arg not in known for k in call.keywords):
            raise ValueError(f"{path}: ModelSpec takes keyword arguments only, from {sorted(known)}")
        try:
            values = {k.arg: ast.literal_eval(k.value) for k in call.keywords}
        except ValueError as err:
            raise ValueError(
                f"{path}: ModelSpec arguments must be literals (the registry does not import the file): {err}"
            ) from err
        if "examples" in values:
            values["examples"] = tuple(values["examples"])
        return ModelSpec(**values)
    return None


@cache
def registry(package_dir: Path = PACKAGE_DIR) -> dict[str, RegisteredModule]:
    """{module name: RegisteredModule} of every file of `package_dir` that declares a SPEC."""
    found = {}
    for path in sorted(package_dir.glob("*.py")):
        spec = _declared_spec(path)
        if spec is not None:
            found[path.stem] = RegisteredModule(path.stem, path, spec)
    return found


def model_spec(name: str) -> ModelSpec:
    """The SPEC of the model module `name`; ValueError naming the known ones otherwise."""
    modules = registry()
    if name not in modules:
        raise ValueError(f"unknown model module {name!r}; known: {sorted(modules)}")
    return modules[name].spec


@runtime_checkable
class EmbeddingModel(Protocol):
    """What `load_model` returns: the HEAR attributes plus what the embedding job relies on."""

    sample_rate: int  # Hz
    scene_embedding_size: int
    timestamp_embedding_size: int
    num_hidden_states: int  # L of `iter_layers`' hidden [L, n, t, D]
    pads_exactly: bool  # zero padding past a clip's end leaves its real frames unchanged
    min_samples: int  # shortest clip the model takes (shorter ones are zero-padded to it)
    checkpoint: str | None  # what was loaded (hub id, folder, file), None without weights
    stand_in: bool  # randomly initialised stand-in: every output says so
    provenance: Mapping[str, Any]  # extra facts for provenance.json (e.g. checkpoint revision)

    @property
    def device(self) -> Any: ...  # torch.device the model runs on

    def n_frames(self, n_samples: int, scene: bool = False) -> int:
        """Frames `iter_layers` yields for a clip of `n_samples` (at the scene or timestamp hop)."""
        ...


@runtime_checkable
class ModelModule(Protocol):
    """A model module: HEAR's three functions plus the streaming pass and test instances."""

    SPEC: ModelSpec

    def load_model(self, model_file_path: str = "", **options: Any) -> EmbeddingModel: ...

    def get_timestamp_embeddings(self, audio: Any, model: EmbeddingModel) -> tuple[Any, Any]: ...

    def get_scene_embeddings(self, audio: Any, model: EmbeddingModel) -> Any: ...

    def iter_layers(self, audio: Any, model: EmbeddingModel, *, scene: bool = False, lengths=None) -> Iterator:
        """Yields (start frame, hidden [L, n, t, D] float32 on the CPU, timestamps [t] ms)."""
        ...

    def embed_layers(self, audio: Any, model: EmbeddingModel, *, scene: bool = False) -> tuple[Any, Any]: ...

    def example(self, name: str, folder: Path) -> dict:
        """load_model options of the small offline instance `name` of SPEC.examples (files under `folder`)."""
        ...


def _missing(obj: object, protocol: type) -> list[str]:
    """The members of `protocol` (annotated attributes, methods, properties) `obj` lacks."""
    members = set(vars(protocol).get("__annotations__", {})) | {m for m in vars(protocol) if not m.startswith("_")}
    return sorted(m for m in members if not hasattr(obj, m))


def import_module(name: str) -> ModelModule:
    """Import the model module `name` of the registry and check it keeps the contract."""
    model_spec(name)  # unknown names fail here, naming the known ones
    mod: ModuleType = importlib.import_module(registry()[name].module)
    missing = _missing(mod, ModelModule)
    if missing:
        raise TypeError(
            f"model module {mod.__name__} ({mod.__file__}) lacks {missing} of hearflow.embed.models.ModelModule"
        )
    return mod


def check_model(model: object, name: str) -> EmbeddingModel:
    """`model` as returned by module `name`'s load_model, checked against EmbeddingModel."""
    missing = _missing(model, EmbeddingModel)
    if missing:
        raise TypeError(
            f"hearflow.embed.models.{name}.load_model returned a {type(model).__name__} without {missing} "
            "(hearflow.embed.models.EmbeddingModel); set them in the model class"
        )
    return model
