"""The heareval and linear probe engines, layer-wise probing, and native/heareval parity.

PYTHONPATH=src .venv/bin/python -m pytest tests/test_probe_engines.py -q

The heareval tests run the official kit in its own virtualenv (.venv-heareval, made by
`bootstrap.sh --heareval`, which the test command runs); without it they are skipped with that reason, unless
HEARFLOW_REQUIRE_HEAREVAL=1 (CI), where they fail.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from benchmarks.probe_compare import PARITY_GRID, demo_embeddings, parity, run_engine
from hearflow.probe import linear_probe
from hearflow.probe.job import run_layer_probe, run_probe
from tests.conftest import ROOT
from tests.test_probe import EVENT_METRICS, TINY_GRID, event_task, scene_task

HEAREVAL_PYTHON = ROOT / ".venv-heareval" / "bin" / "python"
# Skipped without .venv-heareval, except where HEARFLOW_REQUIRE_HEAREVAL=1 (CI): then they run
# and fail on the missing runner rather than skip.
needs_heareval = pytest.mark.skipif(
    not HEAREVAL_PYTHON.is_file() and os.environ.get("HEARFLOW_REQUIRE_HEAREVAL") != "1",
    reason="no .venv-heareval: run ./bootstrap.sh --heareval to create it",
)
FAST_LINEAR = {"epochs": 40, "batch_size": 32, "lr": 1e-2}


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny probes: one thread is fastest


# ------------------------------------------------------------------------ linear engine


def test_linear_engine_scene_multiclass_and_multilabel(tmp_path):
    blobs = scene_task(
        tmp_path / "blobs",
        prediction_type="multiclass",
        evaluation=["top1_acc", "pitch_acc", "chroma_acc"],
        sizes={"train": 200, "valid": 60, "test": 60},
    )
    result = linear_probe(blobs, **FAST_LINEAR)
    assert result["engine"] == "linear" and result["hparams"]["epochs"] == 40
    assert set(result["metrics"]) == {"top1_acc", "pitch_acc", "chroma_acc"}
    assert result["metrics"]["top1_acc"] >= 0.95
    assert 0 <= result["folds"][0]["best_epoch"] < 40 and result["validation_score"] < 0.5

    tags = scene_task(
        tmp_path / "tags",
        prediction_type="multilabel",
        evaluation=["mAP", "d_prime", "aucroc"],
        sizes={"train": 300, "valid": 100, "test": 100},
        nlabels=4,
    )
    metrics = linear_probe(tags, **FAST_LINEAR)["metrics"]
    assert metrics["mAP"] >= 0.9 and metrics["aucroc"] >= 0.95 and metrics["d_prime"] >= 2.0


def test_linear_engine_kfold_and_events(tmp_path):
    folds = scene_task(
        tmp_path / "folds",
        prediction_type="multiclass",
        evaluation=["top1_acc"],
        sizes={"fold00": 80, "fold01": 80, "fold02": 80},
        split_mode="new_split_kfold",
    )
    result = linear_probe(folds, **FAST_LINEAR)
    assert [f["test"] for f in result["folds"]] == [["fold00"], ["fold01"], ["fold02"]]
    accs = [f["metrics"]["top1_acc"] for f in result["folds"]]
    assert result["metrics_std"]["top1_acc"] == pytest.approx(np.std(accs, ddof=1))
    assert min(accs) >= 0.9

    events = linear_probe(event_task(tmp_path / "events"), **FAST_LINEAR)
    assert set(events["metrics"]) == set(EVENT_METRICS)
    assert events["metrics"]["event_onset_200ms_fms"] >= 0.9
    assert events["metrics"]["segment_1s_er"] <= 0.1
    assert events["postprocessing"]["median_filter_ms"] == 250


def _member_with_layers(root: Path, signal: list[float]) -> Path:
    """A member dir whose layers/NN views share one task; layer i's class means scale by signal[i]."""
    member = root / "members" / "toy_ssl" / "blobs"
    base = scene_task(
        root / "base" / "blobs",
        prediction_type="multiclass",
        evaluation=["top1_acc", "mAP"],
        sizes={"train": 120, "valid": 60, "test": 60},
    )
    from hearflow.core.hear import Task, read_embeddings, read_target_labels, write_embeddings, write_target_labels

    task = Task.load(base)
    rng = np.random.default_rng(1)
    for i, gain in enumerate(signal):
        view = member / "layers" / f"{i:02d}"
        view.mkdir(parents=True)
        for name in ["task_metadata.json", "labelvocabulary.csv"] + [f"{s}.json" for s in task.splits]:
            (view / name).write_bytes((base / name).read_bytes())
        for split in task.splits:
            x = read_embeddings(base, split)
            write_embeddings(view, split, gain * x + 4.0 * rng.normal(size=x.shape))
            write_target_labels(view, split, read_target_labels(base, split))
    (member / "provenance.json").write_text(json.dumps({"model": "toy_ssl", "stand_in": True}))
    return member


def test_layer_probe_writes_one_curve_per_model_and_task(tmp_path):
    member = _member_with_layers(tmp_path, [0.0, 0.3, 1.0])
    out = tmp_path / "probe_layers" / "toy_ssl" / "blobs" / "scores.json"
    written = run_layer_probe(member, out, engine="linear", seed=3, linear=FAST_LINEAR)
    scores = json.loads(out.read_text())
    assert scores == json.loads(json.dumps(written))
    assert scores["metric"] == "top1_acc" and scores["engine"] == "linear" and scores["seed"] == 3
    assert scores["model"] == "toy_ssl" and scores["task"] == "blobs" and scores["stand_in"] is True
    assert [entry["layer"] for entry in scores["layers"]] == [0, 1, 2]
    curve = [entry["score"] for entry in scores["layers"]]
    assert curve == [entry["metrics"]["top1_acc"] for entry in scores["layers"]]
    assert curve[0] < 0.5 < curve[2]  # noise only vs. the full signal (5 classes: chance 0.2)

    native = run_layer_probe(
        member, tmp_path / "native.json", engine="native", seed=3, grid=TINY_GRID, max_grid_points=1
    )
    assert native["engine"] == "native" and len(native["layers"]) == 3
    with pytest.raises(ValueError, match="no per-layer views"):
        run_layer_probe(tmp_path, tmp_path / "x.json", engine="linear", seed=0)


def test_run_probe_writes_scores_of_every_engine_schema(tmp_path):
    emb = scene_task(
        tmp_path / "blobs",
        prediction_type="multiclass",
        evaluation=["top1_acc", "mAP"],
        sizes={"train": 100, "valid": 40, "test": 40},
    )
    for engine in ("native", "linear"):
        out = tmp_path / engine / "scores.json"
        run_probe(emb, out, engine=engine, grid=TINY_GRID, max_grid_points=1, seed=5, linear=FAST_LINEAR)
        scores = json.loads(out.read_text())
        assert scores["engine"] == engine and scores["seed"] == 5
        assert set(scores["metrics"]) == set(scores["metrics_std"]) == {"top1_acc", "mAP"}
        assert scores["evaluation"] == ["top1_acc", "mAP"] and scores["hparams"]
    with pytest.raises(ValueError, match="not available"):
        run_probe(emb, tmp_path / "x.json", engine="sklearn", grid={}, max_grid_points=1, seed=0)


# ------------------------------------------------------------------------ heareval engine


@needs_heareval
@pytest.mark.parametrize("kind", ["multilabel", "event"])
def test_one_grid_point_native_equals_heareval(tmp_path, kind):
    """With one grid point nothing is stacked: the native engine draws the RNG where
    heareval does, so it trains the same model: same best epochs, the same scores up to
    float rounding (the two differ in reduction order; Adam turns the rounding noise in the
    gradient of a bias just before BatchNorm into small steps), metric by metric."""
    if kind == "event":
        emb = event_task(tmp_path / "events")
    else:
        emb = scene_task(
            tmp_path / "tags",
            prediction_type="multilabel",
            evaluation=["mAP", "d_prime", "aucroc", "top1_acc"],
            sizes={"fold00": 60, "fold01": 60, "fold02": 60},
            split_mode="new_split_kfold",
            nlabels=4,
        )
    grid = {**TINY_GRID, "dropout": [0.1], "max_epochs": [12], "patience": [2]}
    common = {"grid": grid, "max_grid_points": 1, "seed": 42, "device": "cpu"}
    ours = run_engine("native", emb, **common)
    theirs = run_engine("heareval", emb, heareval_python=HEAREVAL_PYTHON, **common)
    assert theirs["engine"] == "heareval" and theirs["hparams"]["hidden_dim"] == 32
    assert [f["test"] for f in theirs["folds"]] == [f["test"] for f in ours["folds"]]
    for mine, kit in zip(ours["folds"], theirs["folds"], strict=True):
        assert mine["best_epoch"] == kit["best_epoch"]
        assert mine["validation_score"] == pytest.approx(kit["validation_score"], abs=2e-3)
        for metric, value in kit["metrics"].items():
            assert mine["metrics"][metric] == pytest.approx(value, abs=0.02, nan_ok=True), metric
    if kind == "event":
        assert theirs["postprocessing"] == ours["postprocessing"]


@pytest.mark.e2e  # heareval's own runner over every demo task: minutes
@needs_heareval
def test_parity_on_the_demo_tasks(tmp_path):
    """Native (5 seeds) vs heareval (seed 42) on identical demo embeddings, same grid:
    |native mean - heareval| <= max(native spread over seeds, 2 points), every metric."""
    dirs = demo_embeddings(tmp_path, seed=42, scale=0.5)
    common = {"grid": PARITY_GRID, "max_grid_points": 2, "device": "cpu"}
    failures = {}
    for task, emb in dirs.items():
        native = [run_engine("native", emb, seed=42 + s, **common) for s in range(5)]
        heareval = run_engine("heareval", emb, seed=42, heareval_python=HEAREVAL_PYTHON, **common)
        assert set(heareval["metrics"]) == set(native[0]["metrics"])
        for metric, p in parity(native, heareval).items():
            if not p["within"]:
                failures[f"{task}/{metric}"] = p
    assert not failures, json.dumps(failures, indent=1)
