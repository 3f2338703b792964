"""The size model of the planner: a task's shape and the bytes each file the pipeline writes takes.

    shapes = real_shapes(catalog, tasks)                  # or sim_shapes(...) for hear2021-sim
    member_bytes(shape, model_facts(name, spec, request), scene_groups)

WAV: 44-byte header + 16-bit mono PCM; heareval's raw float32 embeddings; label and timestamp
files. hearflow.workflow.plan turns these into a suite's plan; tests/test_plan.py checks the
model against what a hear2021-sim run wrote.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

GB = 1e9
TAR_BLOCK = 512
# gzip (level 1 for hear2021-sim's archives) shrinks 16-bit PCM with a little noise by ~3%
# (measured on its 20 archives: 0.93-0.98 of the tar stream); the public archives'
# sizes are not published (catalog/hear2021.yaml), so the same ratio stands in for them.
ARCHIVE_RATIO = 0.955
NAME_CHARS_REAL = 24  # a real clip's file name (hashes, ids): an estimate
LABEL_CHARS_REAL = 10


@dataclass
class TaskShape:
    """What the planner needs to know of one task."""

    task: str
    category: str
    splits: list[str]
    event: bool
    labels: int
    pieces: list[tuple[float, int]]  # (clip seconds, clips) over all splits
    labels_per_clip: float = 1.0  # scene
    events_per_clip: float = 0.0  # event
    name_chars: int = NAME_CHARS_REAL
    label_chars: float = LABEL_CHARS_REAL
    metadata_bytes: int = 1000  # the task's task_metadata.json

    @property
    def clips(self) -> int:
        return sum(n for _, n in self.pieces)

    @property
    def seconds(self) -> float:
        return sum(d * n for d, n in self.pieces)


# ------------------------------------------------------------------------------ task shapes


def real_shapes(catalog: dict, tasks) -> list[TaskShape]:
    """Shapes of the real tasks from the catalog (clips, durations, labels, densities)."""
    out = []
    for t in tasks:
        f = catalog[t]
        raw = _metadata_raw(t)
        meta = json.loads(raw)
        if f.get("durations"):
            mean = f.get("mean_seconds") or math.sqrt(f["durations"][0] * f["durations"][1])
            pieces = [(float(mean), int(f["clips"]))]
        else:
            pieces = [(float(f["sample_duration"]), int(f["clips"]))]
        event = f["embedding_type"] == "event"
        per_clip = f.get("events_per_minute", 0) * pieces[0][0] / 60 if event else 0.0
        out.append(
            TaskShape(
                t,
                f["category"],
                meta["splits"],
                event,
                int(f["labels"]),
                pieces,
                labels_per_clip=f.get("labels_per_clip", 1.0),
                events_per_clip=per_clip,
                metadata_bytes=len(raw),
            )
        )
    return out


def sim_shapes(catalog: dict, tasks, settings: dict) -> list[TaskShape]:
    """Shapes of hear2021-sim's stand-ins (hearflow.data.sim), clip by clip."""
    from hearflow.data import sim

    out = []
    for t, s in sim.suite_shapes(catalog, tasks, settings).items():
        per_split = [s.durations[i % len(s.durations)] for i in range(s.clips)]
        counts: dict[float, int] = {}
        for d in per_split:
            counts[d] = counts.get(d, 0) + len(s.splits)
        raw = _metadata_raw(t)
        meta = json.loads(raw)
        multilabel = meta["prediction_type"] == "multilabel"
        vocab = sim.simtask.vocabulary(meta, s.vocabulary_size)
        name_chars = round(sum(len(x) for x in s.splits) / len(s.splits)) + len("_0000.wav")
        out.append(
            TaskShape(
                t,
                catalog[t]["category"],
                list(s.splits),
                s.events_per_clip is not None,
                s.vocabulary_size,
                sorted(counts.items()),
                labels_per_clip=1.0 if not multilabel or s.cover else 2.0,
                events_per_clip=float(s.events_per_clip or 0),
                name_chars=name_chars,
                label_chars=sum(map(len, vocab)) / len(vocab),
                metadata_bytes=len(raw),
            )
        )
    return out


def _metadata_raw(task: str) -> bytes:
    from hearflow.data.sim import metadata_bytes

    return metadata_bytes(task)


# ------------------------------------------------------------------------------ file sizes


def wav_bytes(shape: TaskShape, rate: int) -> int:
    """16-bit mono PCM WAV files at `rate`: a 44-byte header and 2 bytes per sample."""
    return sum(n * (44 + 2 * round(d * rate)) for d, n in shape.pieces)


# JSON and pickle sizes below follow the writers byte by byte where the content is known
# (hearflow.data.simtask's label files: json indent=1; hearflow.core.hear's heareval files): each
# constant is the bytes of one line or record of that format, as commented.
EVENT_VALUE_CHARS = 7  # an onset/offset in ms with 3 decimals, e.g. "667.692"
EVENT_SECONDS = 0.425  # mean event length: hear2021-sim's events last 250-600 ms


def _vocab(shape: TaskShape) -> list[int]:
    """Character counts of the labels (simtask's own labels for the sim; an estimate else)."""
    return [round(shape.label_chars)] * shape.labels


def label_file_bytes(shape: TaskShape) -> int:
    """task_metadata.json, labelvocabulary.csv ("idx,label" rows) and the split label files
    ({"name": [labels]} or {"name": [{"end", "label", "start"}]}, indent 1)."""
    vocab = 10 + sum(len(str(i)) + c + 2 for i, c in enumerate(_vocab(shape)))
    clip = shape.name_chars + 7 + 4  # ' "NAME": [' and ' ],' lines
    if shape.event:  # '  {', '   "end": V,', '   "label": "L",', '   "start": V', '  },'
        per_clip = clip + shape.events_per_clip * (2 * EVENT_VALUE_CHARS + shape.label_chars + 50)
    else:  # '  "L",'
        per_clip = clip + shape.labels_per_clip * (shape.label_chars + 6)
    return int(shape.metadata_bytes + vocab + shape.clips * per_clip + 2 * len(shape.splits))


def tar_bytes(shape: TaskShape, rate: int) -> int:
    """The archive's tar stream: each member a 512-byte header, data padded to 512 bytes."""
    members = shape.clips + 3 + 2 * len(shape.splits) + 3  # files, split and rate folders
    return wav_bytes(shape, rate) + label_file_bytes(shape) + members * (TAR_BLOCK + TAR_BLOCK // 2)


@dataclass
class ModelFacts:
    """What a model's views are made of."""

    name: str
    rate: int
    dim: int
    hidden_states: int
    event_hop_ms: float
    gflop_per_audio_second: float | None
    audio_seconds_per_gpu_second: float | None
    request: dict = field(default_factory=dict)


CREPE_MULTIPLIER = {"full": 32, "large": 24, "medium": 16, "small": 8, "tiny": 4}
PASST_LOGITS = 527


def model_facts(name: str, spec: dict, request: dict) -> ModelFacts:
    """Embedding size, hidden states, rate and event hop of a registry model (its stand-in
    sizes for a stand-in; catalog/checkpoints.yaml for the real SSL checkpoints). Sources:
    CREPE's embedding is conv5 flattened, 64 x capacity multiplier (2048 for full:
    hear-baseline hearbaseline/torchcrepe.py); PaSST mode all = 527 logits + features
    (1295 for PaSST-S: hear21passt wrapper.py); wav2vec2/HuBERT: a 320-sample hop at 16 kHz."""
    options, module = spec.get("options", {}), spec["module"]
    if module == "ssl":
        if "standin" in spec:
            dim, states = spec["standin"].get("hidden_size", 32), spec["standin"].get("num_hidden_layers", 4) + 1
        else:
            from hearflow.embed.models.standin import checkpoint_facts

            facts = checkpoint_facts(options["checkpoint"])
            dim, states = facts["hidden_size"], facts["hidden_states"]
        rate, hop = 16000, 20.0
    elif module == "crepe":
        dim, states, rate = 64 * CREPE_MULTIPLIER[options.get("capacity", "full")], 1, 16000
        hop = float(options.get("timestamp_hop_ms", 50))
    elif module == "logmel":
        dim, states, rate = int(options.get("n_mels", 128)), 1, int(options.get("sample_rate", 32000))
        hop = float(options.get("hop_ms", 10))
    elif module == "passt":
        width = spec["standin"].get("embed_dim", 32) if "standin" in spec else 768
        mode = options.get("mode", "all")
        dim = {"all": PASST_LOGITS + width, "logits": PASST_LOGITS}.get(mode, width)
        states, rate, hop = 1, 32000, float(options.get("timestamp_hop_ms", 50))
    else:
        raise ValueError(f"{name}: the planner knows no module {module!r}")
    return ModelFacts(
        name,
        rate,
        dim,
        states,
        hop,
        request.get("gflop_per_audio_second"),
        request.get("audio_seconds_per_gpu_second"),
        request,
    )


def clip_frames(seconds: float, m: ModelFacts) -> int:
    """Frames of one event clip: wav2vec2/HuBERT a 400-sample window every 320 samples at
    16 kHz; the others one frame every hop from 0 to the clip's end."""
    if m.event_hop_ms == 20.0 and m.rate == 16000:
        return max(1, (round(seconds * 16000) - 400) // 320 + 1)
    return int(round(seconds * m.rate) / (m.rate * m.event_hop_ms / 1000)) + 1


def event_frames(shape: TaskShape, m: ModelFacts) -> int:
    return sum(n * clip_frames(d, m) for d, n in shape.pieces)


def view_bytes(shape: TaskShape, dim: int, frames: int | None, hop_ms: float = 0.0) -> int:
    """One heareval embedding folder: the task's label files (copied in), per split raw
    float32 embeddings, "[N, D]" dimensions, pickled target labels (~3 bytes per row and per
    label in it) and, for event tasks, [["name", ms], ...] timestamps (one line, ", ")."""
    splits = len(shape.splits)
    files = label_file_bytes(shape) + splits * 12
    if frames is None:  # scene: one row per clip
        labels = 14 * splits + shape.clips * (3 + shape.labels_per_clip * (shape.label_chars + 3))
        return int(files + shape.clips * 4 * dim + labels)
    mean_s = shape.seconds / max(1, shape.clips)
    ts_chars = len(f"{1000 * mean_s / 2:.1f}")  # a typical timestamp in ms
    active = frames * shape.events_per_clip * min(EVENT_SECONDS, mean_s) / max(mean_s, 1e-9)  # labels per frame
    labels = 14 * splits + 3 * frames + 3 * active
    return int(files + frames * (4 * dim + shape.name_chars + 8 + ts_chars) + labels)


PROVENANCE_BYTES = 1200  # a member's provenance.json
CONFIG_JSON_BYTES = 300  # a config folder's config.json


def member_bytes(shape: TaskShape, m: ModelFacts, scene_groups) -> int:
    """Every view rule `embed` writes (hearflow.embed.job): event tasks last and fusion frames;
    scene tasks last, fusion, each hidden state (models with more than one) and the time
    groups of embed.scene_groups."""
    if shape.event:
        return 2 * view_bytes(shape, m.dim, event_frames(shape, m)) + PROVENANCE_BYTES
    views = [m.dim, m.dim] + ([m.dim] * m.hidden_states if m.hidden_states > 1 else [])
    views += [g * m.dim for g in scene_groups for _ in ("last", "fusion")]
    return sum(view_bytes(shape, d, None) for d in views) + PROVENANCE_BYTES


def config_dim(cfg, facts: dict[str, ModelFacts]) -> int:
    """single: the member's size; avg: dim; cat and cat_blocks: dim per member."""
    if cfg.combine == "single":
        return facts[cfg.members[0].model].dim
    n = len(cfg.members)
    return cfg.dim * (n if cfg.combine in ("cat", "cat_blocks") else 1)


def config_bytes(shape: TaskShape, cfg, facts: dict[str, ModelFacts]) -> int:
    """Rule `ensemble`'s folder: event frames on the finest member's grid; scene rows of
    dim x groups (pooling {groups: N})."""
    dim = config_dim(cfg, facts)
    if shape.event:
        frames = max(event_frames(shape, facts[m.model]) for m in cfg.members)
        return view_bytes(shape, dim, frames) + CONFIG_JSON_BYTES
    groups = cfg.pooling["groups"] if isinstance(cfg.pooling, dict) else 1
    return view_bytes(shape, dim * groups, None) + CONFIG_JSON_BYTES
