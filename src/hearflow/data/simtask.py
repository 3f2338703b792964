"""Synthetic HEAR tasks built from any `task_metadata.json`: small, seeded, packed like the
public archives. Torch-free (numpy, the standard library and hearflow.core.hear).

The metadata is taken as given (a dict, or the bytes of a real task_metadata.json, written
unchanged), so a synthetic task has exactly the split names, split mode, folds, embedding and
prediction type and evaluation metrics of the task it stands in for; only the audio, the
labels and the size are made up::

    meta = Path("tests/fixtures/hear2021/esc50-v2.0.0-full/task_metadata.json").read_bytes()
    build_archive(meta, "esc50-v2.0.0-full", Path("mirror") / archive_name("esc50-v2.0.0-full"))  # hearflow.data.archives

What a task holds (`build_task`):

- `labelvocabulary.csv` (`idx,label`) of `vocabulary_size` labels (`vocabulary()`): MIDI
  pitch numbers ("60", "65", ...) when the task is scored with pitch_acc/chroma_acc (the
  nsynth_pitch tasks), `label_<i>` otherwise.
- per split `<split>.json` and `<rate>/<split>/*.wav` (mono 16-bit PCM; 48 kHz unless
  `sample_rate` says otherwise, as upstream's 16/22.05/32/44.1 kHz archives). Each class
  sounds as a harmonic tone of its own pitch over a little noise.
- Scene tasks: every split holds, for each class c, a clip labelled c and a *twin* with the
  same audio labelled c+1 (multiclass) or {c+1} (multilabel). So every class has a positive
  and a negative in every split (AUC-based metrics are defined: sklearn raises without
  both), and on every class the twin pair ties, which keeps each class's test AUC strictly
  between 0 and 1. heareval's d' is sqrt(2) * ppf(AUC): +-inf at AUC 1 or 0, which a probe
  reaches easily on a handful of separable clips; the twins keep it finite. Twins carry no
  information about their label (with 2 classes the twin pairs alone are pure label noise),
  so by default each split also has K clean clips: clips beyond the first 2K carry the label
  of their own tone (multiclass) or two labels over two tones (multilabel), classes in turn.
- Event tasks: every clip holds two events of different classes ({label, start, end} in ms),
  classes in turn, so every split has every class. Each event spans a quarter of its clip,
  and must last 250 ms (HEAR's longest min_duration), so event clips last 1 s or more.
- Durations: one float for every clip, or a sequence cycled over the clips of a split
  (variable-length tasks such as FSD50K). Clips are meant to be short (seconds), whatever
  `sample_duration` the metadata states.

Bytes depend only on (metadata, name, vocabulary size, clips, durations, seed): members are
sorted, with zeroed times and owners, and the gzip header holds no name or time.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import tarfile
import tempfile
import wave
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from hearflow.core.hear import ARCHIVE_RATE

SAMPLE_RATE = ARCHIVE_RATE  # as the public archives, unless `sample_rate` says otherwise
PITCH_METRICS = ("pitch_acc", "chroma_acc")
_GZIP_LEVEL = 1  # noisy PCM barely compresses; higher levels only cost time


def _parse(metadata: dict | bytes | str) -> tuple[dict, bytes]:
    """(metadata dict, the bytes to write). A dict is written as hear-preprocess writes it
    (json.dump with indent=True: one space, no trailing newline); bytes/str are kept as they are."""
    if isinstance(metadata, dict):
        return metadata, json.dumps(metadata, indent=True).encode()
    raw = metadata.encode() if isinstance(metadata, str) else bytes(metadata)
    return json.loads(raw), raw


def _check(metadata: dict, name: str) -> None:
    """What building needs; nothing more. The pipeline's own rules (hearflow.core.hear) are what a
    synthetic task tests, so they are not applied here."""
    missing = [k for k in ("embedding_type", "prediction_type", "evaluation", "splits") if k not in metadata]
    if missing:
        raise ValueError(f"{name}: task_metadata lacks {missing}")
    if metadata["embedding_type"] not in ("scene", "event") or metadata["prediction_type"] not in (
        "multiclass",
        "multilabel",
    ):
        raise ValueError(
            f"{name}: unknown embedding_type/prediction_type "
            f"{metadata['embedding_type']!r}/{metadata['prediction_type']!r}"
        )
    splits = metadata["splits"]
    if (
        not splits
        or len(set(splits)) != len(splits)
        or not all(isinstance(x, str) and x and "/" not in x for x in splits)
    ):
        raise ValueError(f"{name}: splits must be distinct names, got {splits!r}")


def vocabulary(metadata: dict, size: int) -> list[str]:
    """`size` labels in idx order: MIDI pitches for pitch-scored tasks, else label_<i>."""
    if size < 2:
        raise ValueError(f"a task needs at least 2 labels, got {size}")
    if any(m in PITCH_METRICS for m in metadata["evaluation"]):
        low, high = int(metadata.get("pitch_range_min", 21)), int(metadata.get("pitch_range_max", 108))
        step = min(5, (high - low) // (size - 1))  # 5 semitones apart, closer when many (88: every key)
        if step < 1:
            raise ValueError(f"{size} pitches do not fit the task's pitch range {low}..{high}")
        start = max(low, min(60, high - step * (size - 1)))
        return [str(start + step * i) for i in range(size)]
    return [f"label_{i}" for i in range(size)]


def _class_hz(vocab: list[str], c: int) -> float:
    label = vocab[c]
    midi = int(label) if label.isdigit() else 57 + 4 * c
    return 440.0 * 2.0 ** ((midi - 69) / 12)


def _tone(rng: np.random.Generator, hz: float, start_s: float, n: int, rate: int) -> np.ndarray:
    """A harmonic tone of `n` samples at `rate` Hz from time `start_s`, random harmonic weights
    and phases; the draws do not depend on the rate (the same sound at every rate)."""
    weights = rng.uniform(0.3, 1.0, size=4) / np.arange(1, 5)
    phases = rng.uniform(0, 2 * np.pi, size=4)
    t = start_s + np.arange(n) / rate
    x = sum(w * np.sin(2 * np.pi * hz * (k + 1) * t + p) for k, (w, p) in enumerate(zip(weights, phases)))
    return x / max(np.max(np.abs(x)), 1e-9)


def wav_bytes(audio: np.ndarray, rate: int) -> bytes:
    """Mono float audio as the bytes of a 16-bit PCM WAV, clipped to [-1, 1]."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(rate)
        f.writeframes(np.round(np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes())
    return buf.getvalue()


def _durations(durations: float | Sequence[float], count: int) -> list[float]:
    seq = [float(durations)] if isinstance(durations, int | float) else [float(d) for d in durations]
    if not seq or min(seq) <= 0:
        raise ValueError(f"durations must be positive, got {durations!r}")
    return [seq[i % len(seq)] for i in range(count)]


def min_clips(metadata: dict, vocabulary_size: int, *, cover: bool = True, events_per_clip: int | None = None) -> int:
    """Fewest clips per split that hold every class as described above (1 with cover=False:
    a split then need not hold every class)."""
    if not cover:
        return 1
    if metadata["embedding_type"] == "event":
        return -(-vocabulary_size // (events_per_clip or 1)) if events_per_clip else vocabulary_size
    return 2 * vocabulary_size


def default_clips(metadata: dict, vocabulary_size: int) -> int:
    """Clips per split when none are given: the minimum, plus K clean clips for scene tasks."""
    extra = 0 if metadata["embedding_type"] == "event" else vocabulary_size
    return min_clips(metadata, vocabulary_size) + extra


def _scattered_events(
    vocab: list[str], first: int, n: int, duration: float, noise: np.ndarray, rng: np.random.Generator, rate: int
) -> tuple[list[dict], bytes]:
    """One event clip of `n` events (classes first, first+1, ... in turn), each 250-600 ms long
    (HEAR drops events under 250 ms) at a random onset; events may overlap, as notes do."""
    dur_ms = 1000.0 * duration
    if dur_ms < 250:
        raise ValueError(f"a {dur_ms:.0f} ms clip cannot hold a 250 ms event")
    audio, events = noise, []
    for j in range(n):
        c = (first + j) % len(vocab)
        length = min(dur_ms, rng.uniform(250.0, 600.0))
        start = rng.uniform(0.0, dur_ms - length)
        s, e = round(start * rate / 1000), min(len(audio), round((start + length) * rate / 1000))
        audio[s:e] += 0.5 * _tone(rng, _class_hz(vocab, c), s / rate, e - s, rate)
        events.append({"label": vocab[c], "start": round(start, 3), "end": round(start + length, 3)})
    events.sort(key=lambda ev: (ev["start"], ev["label"]))
    return events, wav_bytes(audio / max(1.0, np.max(np.abs(audio))), rate)


def _split_clips(
    metadata: dict,
    vocab: list[str],
    split: str,
    count: int,
    durations: list[float],
    rng: np.random.Generator,
    rate: int,
    cover: bool = True,
    events_per_clip: int | None = None,
) -> tuple[dict, dict[str, bytes]]:
    """({file: labels}, {file: wav bytes}) of one split. Labels and random draws do not
    depend on `rate`: archives of one task at several rates hold the same sounds."""
    k, labels, wavs = len(vocab), {}, {}
    event = metadata["embedding_type"] == "event"
    multilabel = metadata["prediction_type"] == "multilabel"
    cache: dict[int, bytes] = {}
    for i in range(count):
        name = f"{split}_{i:04d}.wav"
        n = max(1, round(durations[i] * rate))
        noise = 0.02 * np.random.default_rng(rng.integers(2**63)).standard_normal(n)
        if event and events_per_clip:
            labels[name], wavs[name] = _scattered_events(
                vocab, i * events_per_clip, events_per_clip, durations[i], noise, rng, rate
            )
            continue
        if event:
            a, b = i % k, (i + 1) % k
            dur_ms = 1000.0 * durations[i]
            spans = [(0.1 * dur_ms, 0.35 * dur_ms), (0.55 * dur_ms, 0.8 * dur_ms)]
            if spans[0][1] - spans[0][0] < 250:  # HEAR post-processing drops events under 250 ms
                raise ValueError(f"{name}: {dur_ms:.0f} ms is too short for two events; use clips of 1 s or more")
            audio = noise
            for c, (start, end) in zip((a, b), spans, strict=True):
                s, e = round(start * rate / 1000), min(n, round(end * rate / 1000))
                audio[s:e] += 0.5 * _tone(rng, _class_hz(vocab, c), s / rate, e - s, rate)
            labels[name] = [
                {"label": vocab[c], "start": round(s_, 3), "end": round(e_, 3)}
                for c, (s_, e_) in zip((a, b), spans, strict=True)
            ]
            wavs[name] = wav_bytes(audio, rate)
            continue
        if not cover:  # classes in turn, no twins: a split need not hold every class
            classes = [i % k, (i + 1) % k] if multilabel else [i % k]
            names = [vocab[c] for c in classes]
        elif i < 2 * k:  # one clip per class, then its twin (same audio, next class)
            c = i // 2
            names = [vocab[c]] if i % 2 == 0 else [vocab[(c + 1) % k]]
            if i % 2 == 1:
                labels[name], wavs[name] = names, cache[c]
                continue
            classes = [c]
        else:
            j = i - 2 * k
            classes = [j % k, (j + 1) % k] if multilabel else [j % k]
            names = [vocab[c] for c in classes]
        audio = noise + sum(0.5 * _tone(rng, _class_hz(vocab, c), 0.0, n, rate) for c in classes) / len(classes)
        labels[name], wavs[name] = names, wav_bytes(audio, rate)
        if cover and i < 2 * k:
            cache[classes[0]] = wavs[name]
    return labels, wavs


def task_files(
    metadata: dict | bytes | str,
    name: str,
    *,
    vocabulary_size: int = 3,
    clips: int | dict[str, int] | None = None,
    durations: float | Sequence[float] = 1.0,
    seed: int = 0,
    sample_rate: int = SAMPLE_RATE,
    cover: bool = True,
    events_per_clip: int | None = None,
) -> dict[str, bytes]:
    """Every file of the task directory, {relative path: bytes}, nothing written.

    `metadata` is written unchanged (checked only for what building needs: not against the
    pipeline's rules, which a synthetic task is there to test); `name` is the task directory. `clips` per split (an int for every
    split, or {split: n}; default `default_clips`, at least `min_clips`), `durations` in
    seconds (one value, or a sequence cycled over each split's clips), `seed` the random
    streams (one per split), `sample_rate` the audio's rate (its folder and its archive's
    name; labels and sounds are the same at every rate). `cover=False` drops the every-class
    design (scene clips take the classes in turn, no twins: for tasks whose metrics need no
    class in every split); `events_per_clip` scatters that many events over each event clip
    (250-600 ms each, random onsets, classes in turn) instead of the default two.
    """
    meta, raw = _parse(metadata)
    _check(meta, name)
    vocab = vocabulary(meta, vocabulary_size)
    floor = min_clips(meta, vocabulary_size, cover=cover, events_per_clip=events_per_clip)
    default = max(floor, default_clips(meta, vocabulary_size))
    files = {"task_metadata.json": raw}
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["idx", "label"])
    writer.writerows(enumerate(vocab))
    files["labelvocabulary.csv"] = out.getvalue().encode()
    for split in meta["splits"]:
        count = clips.get(split, default) if isinstance(clips, dict) else (clips or default)
        if count < floor:
            raise ValueError(f"{name}/{split}: {count} clips cannot hold every class; at least {floor}")
        rng = np.random.default_rng([seed, zlib.crc32(name.encode()), zlib.crc32(split.encode())])
        labels, wavs = _split_clips(
            meta, vocab, split, count, _durations(durations, count), rng, int(sample_rate), cover, events_per_clip
        )
        files[f"{split}.json"] = json.dumps(labels, indent=1, sort_keys=True).encode()
        files.update({f"{int(sample_rate)}/{split}/{f}": b for f, b in wavs.items()})
    return files


def build_task(metadata: dict | bytes | str, name: str, root: Path, **kwargs) -> Path:
    """Write the task directory root/<name>/ (see task_files for the arguments); return it."""
    task_dir = Path(root) / name
    for rel, data in task_files(metadata, name, **kwargs).items():
        path = task_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return task_dir


def _info(arcname: str, size: int | None) -> tarfile.TarInfo:
    info = tarfile.TarInfo(arcname)
    info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
    if size is None:
        info.type, info.mode = tarfile.DIRTYPE, 0o755
    else:
        info.size, info.mode = size, 0o644
    return info


def build_archive(metadata: dict | bytes | str, name: str, archive: Path, **kwargs) -> Path:
    """Pack the task as `archive` (members tasks/<name>/..., like the public archives: one
    sample rate, `sample_rate`, per archive), written under a temporary name and renamed;
    return archive."""
    return pack_files(name, task_files(metadata, name, **kwargs), archive)


def pack_files(name: str, files: dict[str, bytes], archive: Path) -> Path:
    """Pack a task's files ({path in the task directory: bytes}) as `archive`: members
    tasks/<name>/... sorted, with their folders, zeroed times and owners, a gzip header with no
    name or time (the same files always give the same bytes); written under a temporary name
    and renamed; return archive."""
    dirs = {f"tasks/{name}"} | {
        f"tasks/{name}/" + "/".join(rel.split("/")[:i]) for rel in files for i in range(1, rel.count("/") + 1)
    }
    members = {d: None for d in dirs} | {f"tasks/{name}/{rel}": data for rel, data in files.items()}
    archive = Path(archive)
    archive.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=archive.parent, prefix=f".{archive.name}.", delete=False) as raw:
        try:
            with gzip.GzipFile(filename="", fileobj=raw, mode="wb", compresslevel=_GZIP_LEVEL, mtime=0) as gz:
                with tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
                    for arcname in sorted(members):
                        data = members[arcname]
                        if data is None:
                            tar.addfile(_info(arcname, None))
                        else:
                            tar.addfile(_info(arcname, len(data)), io.BytesIO(data))
        except BaseException:
            Path(raw.name).unlink(missing_ok=True)
            raise
    Path(raw.name).replace(archive)
    return archive
