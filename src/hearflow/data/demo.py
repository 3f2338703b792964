"""The `demo` suite: four small HEAR tasks synthesized offline from a seed with numpy.

They stand in for the HEAR 2021 archives in tests and end-to-end runs, so they are packed
exactly like the public ones: `hear2021-<task>-48000.tar.gz` holding `tasks/<task>/...`
with 48 kHz mono 16-bit WAV clips. Together they exercise every code path of the protocol:

======================  =====  ==========  ==============  =====  ===========================
task                    type   prediction  split mode      clip   content
======================  =====  ==========  ==============  =====  ===========================
demo_tones-v1-full      scene  multiclass  trainvaltest    1.0 s  harmonic tones, MIDI 48..71
demo_vowels-v1-full     scene  multiclass  presplit_kfold  1.0 s  formant vowels a e i o u
demo_mixtures-v1-full   scene  multilabel  trainvaltest    1.5 s  hum/hiss/clicks/chirp mixes
demo_events-v1-full     event  multilabel  trainvaltest    3.0 s  beep/knock/whistle events
======================  =====  ==========  ==============  =====  ===========================

Labels are exact, but not trivial to predict: every clip has a random timbre, a random peak
level (-20..0 dBFS) and background noise of random colour at a random SNR (the clip makers
are in hearflow.data.demo_signals; this module lays out the tasks and packs them). Each
(seed, task, split) draws from its own random stream, so an archive's bytes depend only on
the seed, the task and `scale`::

    build_archive("demo_tones-v1-full", Path("hear2021-demo_tones-v1-full-48000.tar.gz"), seed=0)
"""

from __future__ import annotations

import gzip
import tarfile
import tempfile
import wave
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hearflow.core.hear import KFOLD_SPLIT_MODES, write_vocabulary
from hearflow.core.io import atomic_path, write_json
from hearflow.data.demo_signals import (
    EVENT_NAMES,
    EVENT_S,
    MIXTURE_S,
    PITCHES,
    SAMPLE_RATE,
    SOURCE_NAMES,
    TONE_S,
    VOWEL_S,
    VOWELS,
    event_clip,
    mixture_clip,
    tone_clip,
    vowel_clip,
)

DEMO_TASKS: tuple[str, ...] = (
    "demo_tones-v1-full",
    "demo_vowels-v1-full",
    "demo_mixtures-v1-full",
    "demo_events-v1-full",
)
_GZIP_LEVEL = 1  # noisy PCM barely compresses (level 6 saves <1%); higher levels only cost time

# A clip maker (hearflow.data.demo_signals) takes the split's random stream and the class index the clip must contain
# (None: any, possibly none) and returns (audio [n_samples] float64 in (-1, 1), labels).
_ClipMaker = Callable[[np.random.Generator, int | None], tuple[np.ndarray, list]]


@dataclass(frozen=True)
class _Spec:
    """Layout of one demo task and the function that makes its clips."""

    embedding_type: str
    prediction_type: str
    split_mode: str
    clips: dict[str, int]  # clips per split at scale 1.0; key order is the split order
    duration_s: float
    vocabulary: tuple[str, ...]  # ordered by idx
    evaluation: tuple[str, ...]  # the first metric selects models
    make_clip: _ClipMaker
    evaluation_params: dict | None = None


# ------------------------------------------------------------------------------ tasks

_TRAINVALTEST = ("train", "valid", "test")
_SPECS: dict[str, _Spec] = {
    "demo_tones-v1-full": _Spec(
        "scene",
        "multiclass",
        "trainvaltest",
        dict(zip(_TRAINVALTEST, (240, 60, 60))),
        TONE_S,
        tuple(str(p) for p in PITCHES),
        ("pitch_acc", "chroma_acc"),
        tone_clip,
    ),
    "demo_vowels-v1-full": _Spec(
        "scene",
        "multiclass",
        "presplit_kfold",
        {f"fold{i:02d}": 60 for i in range(3)},
        VOWEL_S,
        VOWELS,
        ("top1_acc",),
        vowel_clip,
    ),
    "demo_mixtures-v1-full": _Spec(
        "scene",
        "multilabel",
        "trainvaltest",
        dict(zip(_TRAINVALTEST, (200, 50, 50))),
        MIXTURE_S,
        SOURCE_NAMES,
        ("mAP", "d_prime"),
        mixture_clip,
    ),
    "demo_events-v1-full": _Spec(
        "event",
        "multilabel",
        "trainvaltest",
        dict(zip(_TRAINVALTEST, (60, 20, 20))),
        EVENT_S,
        EVENT_NAMES,
        ("event_onset_200ms_fms", "segment_1s_er"),
        event_clip,
        {"event_postprocessing_grid": {"median_filter_ms": [250], "min_duration": [125, 250]}},
    ),
}


# HEAR category of each demo task (speech | music | general, as catalog/hear2021.yaml), so
# figures group demo scores the way the PaSST paper groups the HEAR 2021 tasks.
CATEGORIES: dict[str, str] = {
    "demo_tones-v1-full": "music",
    "demo_vowels-v1-full": "speech",
    "demo_mixtures-v1-full": "general",
    "demo_events-v1-full": "general",
}


def task_facts(name: str) -> dict:
    """The catalog facts of a demo task: category, embedding_type, evaluation (first selects)."""
    spec = _spec(name)
    return {"category": CATEGORIES[name], "embedding_type": spec.embedding_type, "evaluation": list(spec.evaluation)}


def _spec(name: str) -> _Spec:
    if name not in _SPECS:
        raise ValueError(f"unknown demo task {name!r}; expected one of {DEMO_TASKS}")
    return _SPECS[name]


def embedding_type(name: str) -> str:
    """A demo task's embedding type ("scene" or "event"), known before it is synthesised."""
    return _spec(name).embedding_type


def _metadata(name: str, spec: _Spec) -> dict:
    """task_metadata.json as hear-preprocess writes it: the task config (short `task_name`,
    `version`; `nfolds` for k-fold split modes only) plus `splits` and `mode`; the directory
    is named `<task_name>-<version>-<mode>`."""
    task_name, version, mode = name.rsplit("-", 2)
    metadata = {
        "task_name": task_name,
        "version": version,
        "embedding_type": spec.embedding_type,
        "prediction_type": spec.prediction_type,
        "split_mode": spec.split_mode,
        "sample_duration": spec.duration_s,
        "evaluation": list(spec.evaluation),
    }
    if spec.split_mode in KFOLD_SPLIT_MODES:
        metadata["nfolds"] = len(spec.clips)
    if spec.evaluation_params is not None:
        metadata["evaluation_params"] = spec.evaluation_params
    metadata["default_mode"] = mode
    metadata["splits"] = list(spec.clips)
    metadata["mode"] = mode
    return metadata


def _split_classes(rng: np.random.Generator, spec: _Spec, split: str, scale: float) -> list[int | None]:
    """The class index each clip of `split` must contain (None: free), in clip order.

    Every class is forced at least twice in train and once elsewhere; multiclass splits
    are balanced, multilabel ones leave the remaining clips free.
    """
    k = len(spec.vocabulary)
    need = 2 if split == "train" else 1
    index = np.arange(max(round(spec.clips[split] * scale), need * k))
    if spec.prediction_type == "multiclass":
        forced = index % k
    else:
        forced = np.where(index < need * k, index % k, -1)
    return [None if c < 0 else c for c in rng.permutation(forced).tolist()]


def _stream(seed: int, name: str, split: str) -> np.random.Generator:
    """The random stream of one split of one task: stable across runs and Python versions."""
    return np.random.default_rng([seed, zlib.crc32(name.encode()), zlib.crc32(split.encode())])


def _write_wav(path: Path, audio: np.ndarray) -> None:
    """Write `audio` [n] (float in (-1, 1)) as mono 16-bit PCM at SAMPLE_RATE."""
    with wave.open(str(path), "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(SAMPLE_RATE)
        f.writeframes(np.round(audio * 32767).astype("<i2").tobytes())


def _check_args(seed: int, scale: float) -> None:
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    if not (np.isfinite(scale) and scale > 0):
        raise ValueError(f"scale must be a positive number, got {scale!r}")


def synthesize_task(name: str, root: Path, *, seed: int, scale: float = 1.0) -> Path:
    """Write the HEAR task directory root/<name>/ (metadata, vocabulary, split label files,
    48000/<split>/*.wav); return it.

    `scale` multiplies the clips per split, but every split keeps every class at least
    twice (train) or once (valid, test, folds). The directory appears atomically,
    replacing any previous one.
    """
    spec = _spec(name)
    _check_args(seed, scale)
    task_dir = Path(root) / name
    with atomic_path(task_dir) as tmp:
        for split in spec.clips:
            rng = _stream(seed, name, split)
            audio_dir = tmp / str(SAMPLE_RATE) / split
            audio_dir.mkdir(parents=True)
            labels = {}
            for i, cls in enumerate(_split_classes(rng, spec, split, scale)):
                audio, labels[f"{i:05d}.wav"] = spec.make_clip(rng, cls)
                _write_wav(audio_dir / f"{i:05d}.wav", audio)
            write_json(tmp / f"{split}.json", labels)
        write_json(tmp / "task_metadata.json", _metadata(name, spec))
        write_vocabulary(tmp / "labelvocabulary.csv", list(spec.vocabulary))
    return task_dir


def _tar_info(path: Path, arcname: str) -> tarfile.TarInfo:
    """A tar header for `path` that carries nothing of the machine or time it was made on."""
    info = tarfile.TarInfo(arcname)
    info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
    if path.is_dir():
        info.type, info.mode = tarfile.DIRTYPE, 0o755
    else:
        info.size, info.mode = path.stat().st_size, 0o644
    return info


def build_archive(name: str, archive: Path, *, seed: int, scale: float = 1.0) -> Path:
    """Synthesize task `name` in a temporary directory and pack it, atomically, as `archive`
    (a .tar.gz with members tasks/<name>/...). Return archive.

    Members are sorted with zeroed times and owners, and the gzip header holds no name or
    time, so the same (name, seed, scale) always gives the same bytes.
    """
    archive = Path(archive)
    with tempfile.TemporaryDirectory() as work:
        task_dir = synthesize_task(name, Path(work), seed=seed, scale=scale)
        members = {f"tasks/{name}": task_dir}
        for path in task_dir.rglob("*"):
            members[f"tasks/{name}/{path.relative_to(task_dir).as_posix()}"] = path
        with atomic_path(archive) as tmp, open(tmp, "wb") as raw:
            with (
                gzip.GzipFile(filename="", fileobj=raw, mode="wb", compresslevel=_GZIP_LEVEL, mtime=0) as gz,
                tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
            ):
                for arcname in sorted(members):
                    path = members[arcname]
                    if path.is_dir():
                        tar.addfile(_tar_info(path, arcname))
                    else:
                        with open(path, "rb") as f:
                            tar.addfile(_tar_info(path, arcname), f)
    return archive
