"""The `hear2021-sim` suite: the 20 HEAR 2021 task directories at small scale, synthesised.

Each task keeps what the real one has: its `task_metadata.json` byte for byte (the
conformance fixtures, tests/fixtures/hear2021/, written by hear-preprocess v2021.1.0's own
code), so its split names, split mode and folds, embedding and prediction type and metrics;
its label vocabulary size, clip durations and their spread, and event density (the task
catalog, catalog/hear2021.yaml, with sources). What is scaled down is the clip count:

    clips per split = max(min_clips, round(scale * real clips / splits), what the metrics need)

and clips longer than `max_seconds` are cut to it (null: the real durations, 600 s for
Beehive; a variable-length task keeps a spread of lengths within its capped range). A task scored with aucroc, mAP or d' needs every label, with a positive and a
negative, in every split (else the metric is undefined: hearflow.data.simtask's twins); a task
scored by accuracy only does not. Event tasks hold `events_per_minute` events per minute of
clip (at least one per clip), every label in every split.

    shape = task_shape("esc50-v2.0.0-full", catalog["esc50-v2.0.0-full"], scale=0.001)
    build_archive("esc50-v2.0.0-full", Path("data/mirror/hear2021-sim/hear2021-esc50-v2.0.0-full-48000.tar.gz"),
                  catalog=catalog, seed=42, scale=0.001)

Torch-free; the audio is hearflow.data.simtask's (harmonic tones per class over noise, 48 kHz).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from hearflow.data import simtask

ROOT = Path(__file__).resolve().parents[3]
FIXTURES = ROOT / "tests" / "fixtures" / "hear2021"
# Metrics that are undefined unless every class has a positive and a negative in the split.
NEEDS_EVERY_LABEL = ("aucroc", "mAP", "d_prime")
SPREAD_POINTS = 5  # variable-length tasks: clip lengths cycle over this many log-spaced values


def metadata_bytes(task: str) -> bytes:
    """The real task_metadata.json of a HEAR 2021 task directory (the conformance fixture)."""
    path = FIXTURES / task / "task_metadata.json"
    if not path.is_file():
        raise FileNotFoundError(f"{task}: no real metadata at {path} (hear2021-sim knows the 20 HEAR 2021 tasks)")
    return path.read_bytes()


@dataclass(frozen=True)
class Shape:
    """What the synthetic stand-in of one task holds."""

    task: str
    splits: tuple[str, ...]
    clips: int  # per split
    vocabulary_size: int
    durations: tuple[float, ...]  # seconds, cycled over each split's clips
    cover: bool  # every label in every split
    events_per_clip: int | None  # event tasks

    @property
    def seconds(self) -> float:
        """Audio seconds of the whole task (every split)."""
        cycle = [self.durations[i % len(self.durations)] for i in range(self.clips)]
        return len(self.splits) * sum(cycle)

    def kwargs(self) -> dict:
        """hearflow.data.simtask arguments."""
        return {
            "vocabulary_size": self.vocabulary_size,
            "clips": self.clips,
            "durations": list(self.durations),
            "cover": self.cover,
            "events_per_clip": self.events_per_clip,
        }


def real_durations(facts: dict, max_seconds: float | None = None) -> tuple[float, ...]:
    """Clip lengths of the real task, none over `max_seconds`: its fixed sample_duration, or
    for a variable-length task SPREAD_POINTS log-spaced lengths over its range (the range
    capped first, so that capped clips still spread)."""
    if facts.get("durations"):
        lo, hi = facts["durations"]
        hi = hi if max_seconds is None else max(lo, min(hi, float(max_seconds)))
        return tuple(round(lo * (hi / lo) ** (i / (SPREAD_POINTS - 1)), 3) for i in range(SPREAD_POINTS))
    d = float(facts["sample_duration"])
    return (d if max_seconds is None else min(d, float(max_seconds)),)


def task_shape(
    task: str,
    facts: dict,
    *,
    scale: float,
    min_clips: int = 4,
    max_seconds: float | None = None,
    metadata: dict | None = None,
) -> Shape:
    """The shape of `task`'s stand-in from its catalog facts (clips, labels, durations,
    events_per_minute) and real metadata (splits, type, metrics)."""
    meta = metadata if metadata is not None else json.loads(metadata_bytes(task))
    splits = tuple(meta["splits"])
    vocab = int(facts["labels"])
    durations = real_durations(facts, max_seconds)
    event = meta["embedding_type"] == "event"
    events = None
    if event:
        per_minute = float(facts["events_per_minute"])
        events = max(1, round(per_minute * min(durations) / 60))
    cover = event or any(m in NEEDS_EVERY_LABEL for m in meta["evaluation"])
    floor = simtask.min_clips(meta, vocab, cover=cover, events_per_clip=events)
    if cover and not event:  # beyond the twins, clean clips that carry their own label
        floor += min(vocab, min_clips)
    clips = max(min_clips, floor, round(scale * facts["clips"] / len(splits)))
    return Shape(task, splits, clips, vocab, durations, cover, events)


def suite_shapes(catalog: dict, tasks, settings: dict) -> dict[str, Shape]:
    """{task: Shape} for a suite's `scale`, `min_clips`, `max_seconds`."""
    return {
        t: task_shape(
            t,
            catalog[t],
            scale=settings["scale"],
            min_clips=settings.get("min_clips", 4),
            max_seconds=settings.get("max_seconds"),
        )
        for t in tasks
    }


def build_archive(task: str, archive: Path, *, shape: Shape, seed: int) -> Path:
    """Synthesise `task` with `shape` and pack it as its real archive name would hold it."""
    return simtask.build_archive(metadata_bytes(task), task, Path(archive), seed=seed, **shape.kwargs())


def summary(shapes: dict[str, Shape]) -> str:
    """One line per task: splits x clips, labels, durations, audio minutes."""
    lines = []
    for s in shapes.values():
        dur = f"{s.durations[0]:g} s" if len(s.durations) == 1 else f"{s.durations[0]:g}-{s.durations[-1]:g} s"
        ev = f", {s.events_per_clip} events/clip" if s.events_per_clip else ""
        lines.append(
            f"{s.task}: {len(s.splits)} splits x {s.clips} clips, {s.vocabulary_size} labels, {dur}{ev}, "
            f"{s.seconds / 60:.1f} min"
        )
    total = sum(s.seconds for s in shapes.values())
    lines.append(f"total: {sum(len(s.splits) * s.clips for s in shapes.values())} clips, {total / 60:.1f} min")
    return "\n".join(lines)
