"""The demo suite: deterministic archives laid out exactly like the HEAR 2021 ones."""

from __future__ import annotations

import hashlib
import json
import tarfile
import wave
from pathlib import Path

import numpy as np
import pytest

from hearflow.core.hear import Task, check_task_layout
from hearflow.data.demo import DEMO_TASKS, SAMPLE_RATE, build_archive, synthesize_task

SCALE = 0.1  # the tone task is then at its minimum: every class twice in train
SEED = 7
TRAINVALTEST = ["train", "valid", "test"]
EXPECTED_METADATA = {
    "demo_tones-v1-full": {
        "embedding_type": "scene",
        "prediction_type": "multiclass",
        "split_mode": "trainvaltest",
        "sample_duration": 1.0,
        "evaluation": ["pitch_acc", "chroma_acc"],
        "splits": TRAINVALTEST,
    },
    "demo_vowels-v1-full": {
        "embedding_type": "scene",
        "prediction_type": "multiclass",
        "split_mode": "presplit_kfold",
        "nfolds": 3,
        "sample_duration": 1.0,
        "evaluation": ["top1_acc"],
        "splits": ["fold00", "fold01", "fold02"],
    },
    "demo_mixtures-v1-full": {
        "embedding_type": "scene",
        "prediction_type": "multilabel",
        "split_mode": "trainvaltest",
        "sample_duration": 1.5,
        "evaluation": ["mAP", "d_prime"],
        "splits": TRAINVALTEST,
    },
    "demo_events-v1-full": {
        "embedding_type": "event",
        "prediction_type": "multilabel",
        "split_mode": "trainvaltest",
        "sample_duration": 3.0,
        "evaluation": ["event_onset_200ms_fms", "segment_1s_er"],
        "splits": TRAINVALTEST,
        "evaluation_params": {"event_postprocessing_grid": {"median_filter_ms": [250], "min_duration": [125, 250]}},
    },
}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def label_names(labels: list) -> list[str]:
    return [e["label"] if isinstance(e, dict) else e for e in labels]


@pytest.fixture(scope="module")
def archives(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every demo task packed once at SCALE, named like the public archives."""
    root = tmp_path_factory.mktemp("archives")
    return {
        name: build_archive(name, root / f"hear2021-{name}-48000.tar.gz", seed=SEED, scale=SCALE) for name in DEMO_TASKS
    }


@pytest.fixture(scope="module")
def tasks(archives: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Task]:
    """Each archive extracted on its own and loaded as a HEAR task."""
    loaded = {}
    for name, archive in archives.items():
        dest = tmp_path_factory.mktemp(name)
        with tarfile.open(archive, "r:gz") as tar:
            tar.extractall(dest, filter="data")
        loaded[name] = Task.load(dest / "tasks" / name)
    return loaded


def test_same_seed_gives_byte_identical_archive_and_other_seed_does_not(tmp_path: Path) -> None:
    name = "demo_vowels-v1-full"
    first = build_archive(name, tmp_path / "a" / "x.tar.gz", seed=3, scale=1e-3)
    again = build_archive(name, tmp_path / "b" / "y.tar.gz", seed=3, scale=1e-3)
    other = build_archive(name, tmp_path / "c" / "x.tar.gz", seed=4, scale=1e-3)
    assert sha256(first) == sha256(again)
    assert sha256(first) != sha256(other)


def test_archive_headers_carry_no_time_or_owner(archives: dict[str, Path]) -> None:
    for name, archive in archives.items():
        assert archive.read_bytes()[4:8] == b"\0\0\0\0", f"{name}: gzip header has an mtime"
        with tarfile.open(archive, "r:gz") as tar:
            members = tar.getmembers()
        assert [m.name for m in members] == sorted(m.name for m in members)
        for m in members:
            assert (m.mtime, m.uid, m.gid, m.uname, m.gname) == (0, 0, 0, "", ""), m.name
            assert m.mode == (0o755 if m.isdir() else 0o644), m.name


@pytest.mark.parametrize("name", DEMO_TASKS)
def test_archive_members_are_all_under_tasks_name(archives: dict[str, Path], name: str) -> None:
    with tarfile.open(archives[name], "r:gz") as tar:
        names = tar.getnames()
    assert all(n == f"tasks/{name}" or n.startswith(f"tasks/{name}/") for n in names)
    assert f"tasks/{name}/task_metadata.json" in names
    assert f"tasks/{name}/labelvocabulary.csv" in names


@pytest.mark.parametrize("name", DEMO_TASKS)
def test_task_is_a_valid_hear_task_with_the_specified_metadata(tasks: dict[str, Task], name: str) -> None:
    task = tasks[name]
    check_task_layout(task, SAMPLE_RATE)
    assert task.sample_rates() == [SAMPLE_RATE]
    short_name = name.removesuffix("-v1-full")
    # hear-preprocess's layout: directory <task_name>-<version>-<mode>, config plus splits and mode
    assert task.metadata == {
        "task_name": short_name,
        "version": "v1",
        "default_mode": "full",
        "mode": "full",
        **EXPECTED_METADATA[name],
    }
    assert f"{task.metadata['task_name']}-{task.metadata['version']}-{task.metadata['mode']}" == task.root.name
    raw = json.loads((task.root / "task_metadata.json").read_text())
    assert isinstance(raw["sample_duration"], float)
    # hear-preprocess forbids nfolds for trainvaltest tasks; the demo must not hide that
    assert ("nfolds" in raw) == (raw["split_mode"] != "trainvaltest")


@pytest.mark.parametrize("name", DEMO_TASKS)
def test_wav_files_are_48khz_mono_int16_of_the_declared_duration(tasks: dict[str, Task], name: str) -> None:
    task = tasks[name]
    frames = round(task.metadata["sample_duration"] * SAMPLE_RATE)
    for split in task.splits:
        for fname in task.labels(split):
            with wave.open(str(task.audio_dir(SAMPLE_RATE, split) / fname), "rb") as f:
                assert (f.getframerate(), f.getnchannels(), f.getsampwidth()) == (48000, 1, 2)
                assert f.getnframes() == frames, f"{split}/{fname}"


@pytest.mark.parametrize("name", DEMO_TASKS)
def test_every_class_appears_in_every_split(tasks: dict[str, Task], name: str) -> None:
    task = tasks[name]
    vocabulary = set(task.vocabulary())
    for split in task.splits:
        seen = {n for labels in task.labels(split).values() for n in label_names(labels)}
        assert seen == vocabulary, f"{name}/{split} lacks {sorted(vocabulary - seen)}"


def test_event_labels_lie_inside_the_clip(tasks: dict[str, Task]) -> None:
    task = tasks["demo_events-v1-full"]
    end_ms = task.metadata["sample_duration"] * 1000
    for split in task.splits:
        for fname, events in task.labels(split).items():
            assert 1 <= len(events) <= 3
            for e in events:
                assert set(e) == {"label", "start", "end"}
                assert 0 <= e["start"] < e["end"] <= end_ms, f"{split}/{fname}: {e}"
                assert 150 <= e["end"] - e["start"] <= 800 + 1e-9


def test_tone_vocabulary_is_contiguous_midi_so_idx_mod_12_is_chroma(
    tasks: dict[str, Task],
) -> None:
    vocabulary = tasks["demo_tones-v1-full"].vocabulary()
    assert [int(v) for v in vocabulary] == list(range(48, 72))
    assert all(int(v) % 12 == i % 12 for i, v in enumerate(vocabulary))


def test_kfold_task_has_three_folds(tasks: dict[str, Task]) -> None:
    task = tasks["demo_vowels-v1-full"]
    assert task.metadata["nfolds"] == 3
    assert task.splits == ["fold00", "fold01", "fold02"]
    for fold in task.splits:
        assert task.labels(fold), f"{fold} is empty"
        assert task.audio_dir(SAMPLE_RATE, fold).is_dir()


def test_multilabel_task_has_clips_with_several_labels(tasks: dict[str, Task]) -> None:
    task = tasks["demo_mixtures-v1-full"]
    counts = [len(labels) for s in task.splits for labels in task.labels(s).values()]
    assert max(counts) > 1
    assert max(counts) <= 3


@pytest.mark.parametrize("name", DEMO_TASKS)
def test_tiny_scale_still_covers_every_class(tmp_path: Path, name: str) -> None:
    task = Task.load(synthesize_task(name, tmp_path, seed=SEED, scale=1e-3))
    for split in task.splits:
        names = [n for labels in task.labels(split).values() for n in label_names(labels)]
        need = 2 if split == "train" else 1
        assert all(names.count(v) >= need for v in task.vocabulary()), f"{name}/{split}"


def test_unknown_task_is_refused_with_the_known_names(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="demo_tones-v1-full"):
        synthesize_task("esc50-v2.0.0-full", tmp_path, seed=0)
    assert not (tmp_path / "esc50-v2.0.0-full").exists()


def test_peak_is_below_full_scale(tasks: dict[str, Task]) -> None:
    for task in tasks.values():
        split = task.splits[0]
        for fname in list(task.labels(split))[:10]:
            with wave.open(str(task.audio_dir(SAMPLE_RATE, split) / fname), "rb") as f:
                pcm = np.frombuffer(f.readframes(f.getnframes()), dtype="<i2")
            assert 0 < np.abs(pcm).max() < 32767
