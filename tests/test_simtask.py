"""hearflow.data.simtask: synthetic HEAR tasks around any task_metadata.json (torch-free)."""

from __future__ import annotations

import json
import subprocess
import sys
import wave

import pytest

from hearflow.core import hear
from hearflow.data import archives as data
from hearflow.data import simtask
from tests.conftest import ROOT

FIXTURES = ROOT / "tests" / "fixtures" / "hear2021"


def _meta(task: str) -> bytes:
    return (FIXTURES / task / "task_metadata.json").read_bytes()


def _seconds(path) -> float:
    with wave.open(str(path)) as f:
        assert (f.getframerate(), f.getnchannels(), f.getsampwidth()) == (48000, 1, 2)
        return f.getnframes() / f.getframerate()


def test_archive_is_deterministic_and_unpacks_like_the_public_ones(tmp_path):
    task = "esc50-v2.0.0-full"
    a = simtask.build_archive(_meta(task), task, tmp_path / "a" / data.archive_name(task), seed=3)
    b = simtask.build_archive(_meta(task), task, tmp_path / "b" / data.archive_name(task), seed=3)
    assert a.name == data.archive_name(task) and a.read_bytes() == b.read_bytes()
    other = simtask.build_archive(_meta(task), task, tmp_path / "c.tar.gz", seed=4)
    assert other.read_bytes() != a.read_bytes()
    out = data.extract_task(a, tmp_path / "tasks" / task, task)  # checks the HEAR layout
    assert (out / "task_metadata.json").read_bytes() == _meta(task)  # byte for byte
    loaded = hear.Task.load(out)
    assert loaded.splits == [f"fold{i:02d}" for i in range(5)] and loaded.vocabulary() == [
        "label_0",
        "label_1",
        "label_2",
    ]


def test_scene_splits_hold_every_class_with_a_tied_twin(tmp_path):
    task = "vocal_imitation-v1.1.3-full"
    root = simtask.build_task(_meta(task), task, tmp_path, vocabulary_size=4, durations=0.5)
    loaded = hear.Task.load(root)
    hear.check_task_layout(loaded, 48000)
    for split in loaded.splits:
        labels = loaded.labels(split)
        assert len(labels) == simtask.default_clips(loaded.metadata, 4) == 12
        names = sorted(labels)
        for c in range(4):  # clip 2c is class c, clip 2c+1 the same audio labelled c+1
            a, b = root / "48000" / split / names[2 * c], root / "48000" / split / names[2 * c + 1]
            assert labels[names[2 * c]] == [f"label_{c}"] and labels[names[2 * c + 1]] == [f"label_{(c + 1) % 4}"]
            assert a.read_bytes() == b.read_bytes()
        assert {lab for labs in labels.values() for lab in labs} == set(loaded.vocabulary())
        assert all(_seconds(p) == 0.5 for p in (root / "48000" / split).glob("*.wav"))


def test_multilabel_variable_lengths_and_pitch_labels(tmp_path):
    fsd = simtask.build_task(_meta("fsd50k-v1.0-full"), "fsd50k-v1.0-full", tmp_path, durations=[0.3, 1.1, 2.0])
    labels = json.loads((fsd / "train.json").read_text())
    assert max(len(v) for v in labels.values()) == 2  # the clean multilabel clips carry two labels
    assert {_seconds(p) for p in (fsd / "48000" / "train").glob("*.wav")} == {0.3, 1.1, 2.0}

    task = "nsynth_pitch-v2.2.3-5h"
    pitch = hear.Task.load(simtask.build_task(_meta(task), task, tmp_path, vocabulary_size=4))
    assert pitch.vocabulary() == ["60", "65", "70", "75"]  # MIDI numbers within pitch_range_min..max


def test_event_tasks_have_two_events_per_clip_in_ms(tmp_path):
    task = "maestro-v3.0.0-5h"
    root = simtask.build_task(_meta(task), task, tmp_path, vocabulary_size=3, durations=2.0)
    loaded = hear.Task.load(root)
    hear.check_task_layout(loaded, 48000)
    for split in loaded.splits:
        labels = loaded.labels(split)
        assert len(labels) == 3
        events = [e for evs in labels.values() for e in evs]
        assert {e["label"] for e in events} == set(loaded.vocabulary())
        assert all(0 < e["start"] < e["end"] <= 2000 for e in events)
    with pytest.raises(ValueError, match="too short for two events"):
        simtask.task_files(_meta(task), task, durations=0.5)


def test_refusals(tmp_path):
    meta = json.loads(_meta("beehive_states_fold0-v2-full"))
    with pytest.raises(ValueError, match="at least 4"):
        simtask.task_files(meta, "x", vocabulary_size=2, clips=3)
    with pytest.raises(ValueError, match="splits must be distinct"):
        simtask.task_files(dict(meta, splits=["train", "train"]), "x")
    with pytest.raises(ValueError, match="lacks \\['evaluation'\\]"):
        simtask.task_files({k: v for k, v in meta.items() if k != "evaluation"}, "x")
    with pytest.raises(ValueError, match="at least 2 labels"):
        simtask.task_files(meta, "x", vocabulary_size=1)


def test_a_dict_is_written_as_hear_preprocess_writes_it(tmp_path):
    meta = json.loads(_meta("beijing_opera-v1.0-hear2021-full"))
    files = simtask.task_files(meta, "beijing_opera-v1.0-hear2021-full")
    assert files["task_metadata.json"] == _meta("beijing_opera-v1.0-hear2021-full")


def test_torch_free():
    code = "import sys, hearflow.data.simtask; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, env={"PYTHONPATH": str(ROOT / "src")})
