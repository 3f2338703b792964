"""Conformance with the real HEAR 2021 metadata: all 20 task directories through the real rules.

For each of the 20 `tests/fixtures/hear2021/<dir>/task_metadata.json` (what hear-preprocess
v2021.1.0 writes; see the README there), a tiny synthetic task is built with
`hearflow.simtask` around that exact file (copied byte for byte: split names, split mode,
folds, `nfolds` present only for k-fold, embedding and prediction type, evaluation metrics,
`evaluation_params`, the extra keys). The audio is made up and short: 1 s clips for scene
tasks (sample_duration 0.81 s stays 0.81 s), 2 s for the event tasks (DCASE 2016 and
MAESTRO state 120 s), 0.4-1.8 s for FSD50K (variable length, sample_duration null), so the
600 s of Beehive and the 30 s of GTZAN are NOT reproduced. Vocabularies are small (3 labels,
2 where the real task is binary), MIDI pitch numbers for the nsynth_pitch tasks.

Each task is packed as `hear2021-<dir>-48000.tar.gz` (members `tasks/<dir>/...`, like the
public archives) and served by an HTTP server on 127.0.0.1 in a thread of this test. One
Snakemake run of the real Snakefile, in a copy of the checkout, with suite hear2021 pointed
at that server (mirror), a temporary checksum lock and a catalog copy whose Beehive md5 are
those of the synthetic archives (so the published-md5 check runs too), downloads, verifies,
extracts, resamples (32 kHz), embeds with the log-mel baseline and probes (native engine,
one grid point, hidden_dim 16, 10 epochs: dcase2016_task2 validates every 10 epochs, as in
heareval; MAESTRO's own task grid sets 50) every task, with --cores 2.

Every metric of every task's `evaluation` must come out finite. Two can be undefined on tiny
data, and the synthetic tasks rule both out by construction rather than the test excusing
them: heareval's aucroc and d' are NaN when a class has no positive (or no negative) test
clip, and d' = sqrt(2) ppf(AUC) is +-inf when a class's test AUC is exactly 1 or 0, which a
probe reaches easily on a handful of separable clips. simtask puts, in every split, a clip of
each class and a twin with the same audio labelled with the next class (plus one clean clip
per class): every class has positives and negatives, and the tied twins keep every AUC
strictly inside (0, 1). Scores are near chance (10 epochs on a dozen clips); the test is
about the plumbing, not the numbers.

The same 20 tasks also go through the linear engine (all 20) and the official heareval
runner (5 of them, where .venv-heareval exists) on model-free band-energy embeddings.

The wall time of the Snakemake run is printed (run pytest with -s to see it).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from hearflow import data, simtask
from hearflow.hear import KFOLD_SPLIT_MODES
from tests.conftest import ROOT, copy_checkout, serve_folder

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

    from hearflow import hear
    from hearflow.audio import read_clip

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
    from hearflow.probe_job import run_probe

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
    from hearflow.probe_job import run_probe

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


# ------------------------------------------------------- the real rules on all 20 tasks


@pytest.fixture()
def mirror(tmp_path):
    """The 20 synthetic archives on an HTTP server on 127.0.0.1 (a thread, stopped at the end)."""
    folder = tmp_path / "mirror"
    for task in TASKS:
        simtask.build_archive(fixture_bytes(task), task, folder / data.archive_name(task), **sim_settings(task))
    with serve_folder(folder) as (url, requested):
        yield url, folder, requested


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


@pytest.mark.e2e
def test_the_twenty_real_metadata_files_run_through_the_real_rules(tmp_path, mirror):
    url, folder, requested = mirror
    repo = copy_checkout(tmp_path / "repo", exclude=(".dvc/",))
    catalog = yaml.safe_load((ROOT / "catalog" / "hear2021.yaml").read_text())
    for task, facts in catalog["tasks"].items():  # published md5 (Beehive): the synthetic archives'
        if facts["md5"]:
            facts["md5"] = _md5(folder / data.archive_name(task))
    (tmp_path / "catalog.yaml").write_text(yaml.safe_dump(catalog, sort_keys=False))
    lock = tmp_path / "conformance.lock"
    override = {
        "suite": "hear2021",
        "suites": {
            "hear2021": {
                "mirror": url,
                "checksums": str(lock),
                "catalog": str(tmp_path / "catalog.yaml"),
                "tasks": TASKS,
                "configs": [CONFIG],
                "overrides": {"probe": PROBE},
            }
        },
    }
    (repo / "conformance.yaml").write_text(yaml.safe_dump(override))
    targets = [f"results/probe/{CONFIG}/{task}/scores.json" for task in TASKS]
    targets += ["reports/metrics.json", "reports/tables/table2_baselines.md"]  # cheap: no figures
    env = dict(os.environ, PYTHONPATH=str(repo / "src"))
    start = time.monotonic()
    res = subprocess.run(
        [sys.executable, "-m", "snakemake", "--cores", "2", "--configfile", "conformance.yaml", "--", *targets],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    wall = time.monotonic() - start
    print(f"\nconformance: one Snakemake run, {len(TASKS)} tasks, --cores 2: {wall:.1f} s wall")
    if res.returncode != 0:
        pytest.fail(f"snakemake failed after {wall:.0f} s:\n{res.stdout[-6000:]}\n{res.stderr[-6000:]}")

    # fetched over HTTP once each, verified and recorded in the temporary lock
    archives = {data.archive_name(t) for t in TASKS}
    assert sorted(requested) == sorted(archives)
    assert json.loads(lock.read_text()) == {
        name: hashlib.sha256((folder / name).read_bytes()).hexdigest() for name in archives
    }
    metrics = json.loads((repo / "reports" / "metrics.json").read_text())
    assert set(metrics) == {CONFIG} and set(metrics[CONFIG]) == set(TASKS)
    for task in TASKS:
        raw = fixture_bytes(task)
        for rate in (48000, 32000):  # extracted and resampled: the metadata passes unchanged
            assert (repo / "data" / "tasks" / str(rate) / task / "task_metadata.json").read_bytes() == raw, (task, rate)
        scores = json.loads((repo / "results" / "probe" / CONFIG / task / "scores.json").read_text())
        check_scores(task, scores)  # keyed on the directory, not on task_name
        assert scores["evaluation"] == fixture(task)["evaluation"]
        assert metrics[CONFIG][task] == {m: round(v, 6) for m, v in scores["metrics"].items()}
    # both nsynth_pitch directories share task_name "nsynth_pitch" and are scored separately
    pitch = [t for t in TASKS if fixture(t)["task_name"] == "nsynth_pitch"]
    assert pitch == ["nsynth_pitch-v2.2.3-50h", "nsynth_pitch-v2.2.3-5h"]
    table = (repo / "reports" / "tables" / "table2_baselines.md").read_text()
    assert all(f"| {t} | pitch_acc" in table for t in pitch)
