"""Conformance with the real HEAR 2021 metadata: all 20 task directories through the probes.

For each of the 20 `tests/fixtures/hear2021/<dir>/task_metadata.json` (what hear-preprocess
v2021.1.0 writes; see the README there), a tiny synthetic task is built with
`hearflow.data.simtask` around that exact file (copied byte for byte: split names, split mode,
folds, `nfolds` present only for k-fold, embedding and prediction type, evaluation metrics,
`evaluation_params`, the extra keys). The audio is made up and short: 1 s clips for scene
tasks (sample_duration 0.81 s stays 0.81 s), 2 s for the event tasks, 0.4-1.8 s for FSD50K.
Vocabularies are small (3 labels, 2 where the real task is binary), MIDI pitch numbers for
the nsynth_pitch tasks.

Every metric of every task's `evaluation` must come out finite. Two can be undefined on tiny
data, and the synthetic tasks rule both out by construction rather than the test excusing
them: heareval's aucroc and d' are NaN when a class has no positive (or no negative) test
clip, and d' = sqrt(2) ppf(AUC) is +-inf when a class's test AUC is exactly 1 or 0, which a
probe reaches easily on a handful of separable clips. simtask puts, in every split, a clip of
each class and a twin with the same audio labelled with the next class (plus one clean clip
per class): every class has positives and negatives, and the tied twins keep every AUC
strictly inside (0, 1).

The 20 tasks go through the linear engine (all 20) and the official heareval runner (5 of
them, where .venv-heareval exists) on model-free band-energy embeddings. The real rules on
all 20 (HTTP download, verification, extraction, resampling, every model and config, the
native probe, the tables) are tests/test_sim.py's hear2021-sim run, at the real tasks'
vocabulary sizes.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest
import yaml

from hearflow.core.hear import KFOLD_SPLIT_MODES
from hearflow.data import simtask
from tests.conftest import ROOT

FIXTURES = ROOT / "tests" / "fixtures" / "hear2021"
TASKS = sorted(p.name for p in FIXTURES.iterdir() if (p / "task_metadata.json").is_file())
BINARY = {"beehive_states_fold0-v2-full", "beehive_states_fold1-v2-full", "tfds_gtzan_music_speech-1.0.0-full"}
CONFIG = "logmel"
PROBE = {"max_grid_points": 1, "grid": {"hidden_dim": [16], "max_epochs": [10], "patience": [2]}}
CATALOG_FACTS = ("embedding_type", "prediction_type", "split_mode", "nfolds", "sample_duration", "evaluation")


def fixture_bytes(task: str) -> bytes:
    return (FIXTURES / task / "task_metadata.json").read_bytes()


def fixture(task: str) -> dict:
    return json.loads(fixture_bytes(task))


def sim_settings(task: str) -> dict:
    """simtask arguments of the stand-in for `task` (see the module docstring)."""
    meta = fixture(task)
    if meta["sample_duration"] is None:
        durations = [0.4, 0.9, 1.3, 1.8]
    elif meta["embedding_type"] == "event":
        durations = 2.0
    else:
        durations = min(1.0, float(meta["sample_duration"]))
    return {"vocabulary_size": 2 if task in BINARY else 3, "durations": durations, "seed": 0}


def test_the_twenty_fixtures_are_there():
    assert len(TASKS) == 20
    catalog = yaml.safe_load((ROOT / "catalog" / "hear2021.yaml").read_text())["tasks"]
    assert set(TASKS) == set(catalog)


@pytest.mark.parametrize("task", TASKS)
def test_catalog_agrees_with_the_fixture(task):
    """catalog/hear2021.yaml states each task's facts as hear-preprocess v2021.1.0 writes
    them (nfolds: null where the metadata has none, i.e. for trainvaltest)."""
    facts = yaml.safe_load((ROOT / "catalog" / "hear2021.yaml").read_text())["tasks"][task]
    meta = fixture(task)
    for key in CATALOG_FACTS:  # equal, and of the same JSON type (600 is an int in the file)
        assert (facts[key], type(facts[key])) == (meta.get(key), type(meta.get(key))), (task, key)
    assert ("nfolds" in meta) == (meta["split_mode"] in KFOLD_SPLIT_MODES)


# ------------------------------------------------------- probe engines on the real metadata


def band_features(audio, *, bands: int = 12):
    """Log energies of `bands` log-spaced bands (60 Hz - 8 kHz) of one stretch of audio."""
    import numpy as np

    spec = np.abs(np.fft.rfft(audio)) ** 2
    hz = np.fft.rfftfreq(len(audio), 1 / simtask.SAMPLE_RATE)
    edges = np.geomspace(60, 8000, bands + 1)
    return np.log1p([spec[(hz >= lo) & (hz < hi)].sum() for lo, hi in zip(edges[:-1], edges[1:])]).astype("float32")


def feature_embeddings(task_dir: Path, emb_dir: Path) -> Path:
    """heareval's embedding format for a 48 kHz task, without a model: band energies of each
    clip (scene) or of 100 ms frames every 50 ms (event; timestamps at the frame centres)."""
    import numpy as np

    from hearflow.core import hear
    from hearflow.core.audio import read_clip

    task = hear.Task.load(task_dir)
    hear.copy_task_files(task, emb_dir)
    win, hop = simtask.SAMPLE_RATE // 10, simtask.SAMPLE_RATE // 20
    for split in task.splits:
        names = sorted(task.labels(split))
        clips = [read_clip(task.audio_dir(simtask.SAMPLE_RATE, split) / n, simtask.SAMPLE_RATE) for n in names]
        if task.is_event:
            starts = [range(0, len(c) - win + 1, hop) for c in clips]
            embs = [np.stack([band_features(c[s : s + win]) for s in st]) for c, st in zip(clips, starts)]
            stamps = [np.array([1000 * (s + win / 2) / simtask.SAMPLE_RATE for s in st]) for st in starts]
            hear.write_split(emb_dir, task, split, names, embs, stamps)
        else:
            hear.write_split(emb_dir, task, split, names, [band_features(c) for c in clips])
    return emb_dir


@pytest.fixture(scope="module")
def embedded(tmp_path_factory) -> dict[str, Path]:
    """{task: embedding dir} of the 20 synthetic tasks (built from the fixtures)."""
    root = tmp_path_factory.mktemp("conformance-emb")
    return {
        task: feature_embeddings(
            simtask.build_task(fixture_bytes(task), task, root / "tasks", **sim_settings(task)), root / "emb" / task
        )
        for task in TASKS
    }


def check_scores(task: str, scores: dict) -> None:
    """Keyed on the directory; every metric of `evaluation` present and finite; HEAR's folds."""
    meta = fixture(task)
    assert scores["task"] == task
    assert set(scores["metrics"]) == set(meta["evaluation"]), task
    for metric in meta["evaluation"]:
        value = scores["metrics"][metric]
        assert value is not None and math.isfinite(value), (task, metric, value)
    folds = [f["test"] for f in scores["folds"]]
    if meta["split_mode"] in KFOLD_SPLIT_MODES:
        assert sorted(f[0] for f in folds) == meta["splits"] and len(folds) == meta["nfolds"], task
    else:
        assert folds == [["test"]], task


@pytest.mark.parametrize("task", TASKS)
def test_linear_engine_on_the_real_metadata(task, embedded, tmp_path, one_torch_thread):
    from hearflow.probe.job import run_probe

    scores = run_probe(
        embedded[task],
        tmp_path / "scores.json",
        engine="linear",
        grid={},
        max_grid_points=1,
        seed=42,
        linear={"epochs": 5},
    )
    check_scores(task, scores)


HEAREVAL_PYTHON = ROOT / ".venv-heareval" / "bin" / "python"
# The official runner costs seconds of imports per task: one task of each kind here (no
# nfolds with trainvaltest, shared task_name, k-fold, multilabel, heareval's dcase grid,
# MAESTRO's evaluation_params and no scoring for early stopping).
HEAREVAL_TASKS = [
    "nsynth_pitch-v2.2.3-5h",
    "fsd50k-v1.0-full",
    "gunshot_triangulation-v1.0-full",
    "dcase2016_task2-hear2021-full",
    "maestro-v3.0.0-5h",
]


@pytest.mark.skipif(  # as tests/test_probe_engines.py: CI sets HEARFLOW_REQUIRE_HEAREVAL=1, then it never skips
    not HEAREVAL_PYTHON.is_file() and os.environ.get("HEARFLOW_REQUIRE_HEAREVAL") != "1",
    reason="no .venv-heareval: run ./bootstrap.sh --heareval to create it",
)
@pytest.mark.parametrize("task", HEAREVAL_TASKS)
def test_heareval_engine_on_the_real_metadata(task, embedded, tmp_path):
    from hearflow.probe.job import run_probe

    scores = run_probe(
        embedded[task],
        tmp_path / "scores.json",
        engine="heareval",
        grid=PROBE["grid"],
        max_grid_points=1,
        seed=42,
        heareval_python=str(HEAREVAL_PYTHON),
        device="cpu",
    )
    check_scores(task, scores)
