"""Intervals and significance (hearflow.report.stats, hearflow.report.intervals, hearflow.report.compare): coverage on
a synthetic problem with known noise, the paired test on planted and null differences, the
bootstrap of heareval's event scores against heareval itself, and `hearflow.report.compare` between
two commits of a test repository."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
from scipy.stats import norm

from hearflow.probe.resamples import clip_resamples
from hearflow.report import stats
from hearflow.report.intervals import cell_interval, collect_intervals, paired_interval
from tests.conftest import ROOT

MU, SEED_SD, NOISE_SD = 0.6, 0.35, 0.2  # latent logit: clip difficulty N(0, 1), a seed's shift, per-run noise


def _draw(rng, n_clips: int, n_seeds: int, shift: float = 0.0, seed_sd: float = SEED_SD, z=None):
    """Correctness [seeds, clips] of one probe setting on a fresh test set (or `z`'s clips):
    clip i is right for seed s when MU + shift + z_i + u_s + e_si > 0."""
    z = rng.normal(size=n_clips) if z is None else z
    u = rng.normal(0.0, seed_sd, size=(n_seeds, 1))
    e = rng.normal(0.0, NOISE_SD, size=(n_seeds, n_clips))
    return (MU + shift + z[None] + u + e > 0).astype(np.float64), z


def _true_accuracy(seed_sd: float) -> float:
    """The expected accuracy over clips and seeds: P(MU + z + u + e > 0)."""
    return float(norm.cdf(MU / math.sqrt(1 + seed_sd**2 + NOISE_SD**2)))


@pytest.mark.parametrize(("seeds", "seed_sd"), [(5, SEED_SD), (3, SEED_SD), (1, 0.0)])
def test_intervals_cover_the_true_value_at_the_stated_rate(seeds, seed_sd):
    """1000 simulated runs (a fresh test set of 120 clips and fresh seeds each): the 95% interval
    of the seed mean, from 100 clip resamples and the seeds' spread, holds the true accuracy in
    95% of them (within 3 standard errors of a binomial rate plus 1 point; measured 0.935 with 5
    seeds, 0.923 with 3: two degrees of freedom for a skewed seed spread undercover a little).
    With one seed (and no seed noise) the clip part alone: 0.954."""
    rng = np.random.default_rng(seeds)
    truth, runs, hits = _true_accuracy(seed_sd), 1000, 0
    for r in range(runs):
        right, _ = _draw(rng, 120, seeds, seed_sd=seed_sd)
        resamples = clip_resamples(120, 100, f"coverage/{r}")
        cell = stats.interval(right.mean(axis=1), right[:, resamples].mean(axis=2))
        hits += cell["low"] <= truth <= cell["high"]
    rate, se = hits / runs, math.sqrt(0.95 * 0.05 / runs)
    assert abs(rate - 0.95) < 3 * se + 0.01, rate


def test_without_seed_spread_the_interval_is_narrower_and_seeds_widen_it():
    rng = np.random.default_rng(0)
    right, _ = _draw(rng, 120, 5)
    resamples = clip_resamples(120, 100, "widen")
    both = stats.interval(right.mean(axis=1), right[:, resamples].mean(axis=2))
    clips = stats.interval([right.mean()], right.mean(axis=0)[None, resamples].mean(axis=2))
    assert both["se"] > clips["se"] > 0 and both["df"] is not None and clips["df"] is None
    assert stats.interval([0.5], None)["low"] is None  # one seed, no resamples: no interval
    partial = stats.interval([0.5, float("nan"), 0.7], [[0.4, 0.6], [np.nan, np.nan], [0.6, 0.8]])
    # an undefined seed is left out, as in the mean; d' at AUC 1 (infinite) leaves no value, as metrics.json
    assert partial["mean"] == pytest.approx(0.6) and partial["seeds"] == 2
    assert stats.interval([1.2, float("inf"), 0.9], None)["mean"] is None


@pytest.mark.parametrize(("shift", "expected"), [(0.0, "null"), (1.2, "planted")])
def test_the_paired_test_flags_a_planted_difference_and_not_a_null_one(shift, expected):
    """Two configurations on the same 120 clips with 5 seeds each, scored on the same resamples:
    a planted shift of 1.2 (about +20 points of accuracy) is flagged in at least 90% of 500 runs
    (measured 94%), no shift in about 5% (at most 8%; measured 6.6%)."""
    rng = np.random.default_rng(7)
    flagged = 0
    for r in range(500):
        base, z = _draw(rng, 120, 5)
        variant, _ = _draw(rng, 120, 5, shift=shift, z=z)
        resamples = clip_resamples(120, 100, f"paired/{r}")
        diff = stats.paired(
            base.mean(axis=1), base[:, resamples].mean(axis=2), variant.mean(axis=1), variant[:, resamples].mean(axis=2)
        )
        flagged += diff["significant"]
        if shift:
            assert diff["mean"] > 0
    rate = flagged / 500
    assert rate >= 0.9 if expected == "planted" else rate <= 0.08, rate


def test_resamples_are_the_same_for_every_configuration_of_a_task():
    a = clip_resamples(60, 50, "demo_tones-v1-full/test")
    assert np.array_equal(a, clip_resamples(60, 50, "demo_tones-v1-full/test"))
    assert not np.array_equal(a, clip_resamples(60, 50, "demo_tones-v1-full/fold01"))
    assert a.min() >= 0 and a.max() < 60 and a.shape == (50, 60)


def test_compare_verdicts_follow_the_metric_direction():
    old, new = {"mean": 0.5, "se": 0.01}, {"mean": 0.6, "se": 0.01}
    assert stats.compare(old, new)["verdict"] == "better"
    assert stats.compare(new, old)["verdict"] == "worse"
    assert stats.compare(old, new, higher_is_better=False)["verdict"] == "worse"  # an error rate went up
    assert stats.compare(old, {"mean": 0.52, "se": 0.02})["verdict"] == "within noise"
    assert stats.compare({"mean": 0.5, "se": None}, {"mean": 0.6, "se": None})["verdict"] == "no interval"
    assert stats.compare({"mean": None}, new)["verdict"] == "n/a"


# --- scores.json cells ---------------------------------------------------------------------


def _scores(values, replicates=None, seeds=None):
    per_seed = [
        {"seed": s, "metrics": {"top1_acc": v}} | ({"replicates": {"top1_acc": r}} if replicates else {})
        for s, v, r in zip(seeds or range(42, 42 + len(values)), values, replicates or [None] * len(values))
    ]
    return {"metrics": {"top1_acc": float(np.mean(values))}, "seed": per_seed[0]["seed"], "per_seed": per_seed}


def test_cells_of_scores_json(tmp_path):
    one = {"metrics": {"top1_acc": 0.7}, "seed": 42}
    assert cell_interval(one, "top1_acc")["low"] is None  # one seed, no resamples: no interval
    three = _scores([0.7, 0.72, 0.68], [[0.6, 0.7, 0.8]] * 3)
    cell = cell_interval(three, "top1_acc")
    assert cell["low"] < 0.7 < cell["high"] and cell["seeds"] == 3
    assert paired_interval(one, three, "top1_acc") is None  # seeds differ: nothing to pair
    better = _scores([0.8, 0.82, 0.78], [[0.7, 0.8, 0.9]] * 3)
    diff = paired_interval(three, better, "top1_acc")
    assert diff["mean"] == pytest.approx(0.1) and diff["significant"]
    for cfg, scores in (("a", three), ("b", one)):
        (tmp_path / cfg / "t").mkdir(parents=True)
        (tmp_path / cfg / "t" / "scores.json").write_text(json.dumps(scores))
    out = collect_intervals(sorted(tmp_path.glob("*/t/scores.json")))
    assert out["a"]["t"]["top1_acc"]["seeds"] == 3 and out["a"]["t"]["top1_acc"]["low"] < 0.7
    assert out["b"]["t"]["top1_acc"] == {"std": None, "se": None, "low": None, "high": None, "seeds": 1}


# --- the bootstrap of heareval's scores --------------------------------------------------------


def test_event_scores_from_per_file_counts_equal_heareval():
    """heareval's event scores (sed_eval, evaluated file by file) on a set of files equal the
    score computed from the per-file counts summed (what each bootstrap resample does); checked
    on every file together and on a subset, for the onset F-measure and the segment error rate."""
    from heareval.score import available_scores

    from hearflow.probe.objective import event_counts, event_score

    rng = np.random.default_rng(3)
    labels = {"a": 0, "b": 1, "c": 2}
    targets, predictions = {}, {}
    for i in range(12):
        starts = np.sort(rng.uniform(0, 2800, size=rng.integers(1, 5)))
        targets[f"f{i}.wav"] = [{"label": str(rng.choice(list(labels))), "start": s, "end": s + 150} for s in starts]
        jitter = starts + rng.normal(0, 120, size=len(starts))
        predictions[f"f{i}.wav"] = [
            {"label": str(rng.choice(list(labels))), "start": max(0.0, s), "end": max(0.0, s) + 200} for s in jitter
        ] + ([{"label": "a", "start": 2900.0, "end": 2950.0}] if i % 3 == 0 else [])
    for name in ("event_onset_200ms_fms", "segment_1s_er"):
        score = available_scores[name](label_to_idx=labels)
        counts = {f: event_counts(score, {f: predictions[f]}, {f: targets[f]}) for f in predictions}
        for files in (list(predictions), ["f1.wav", "f4.wav", "f7.wav", "f9.wav"]):
            summed = {k: sum(counts[f][k] for f in files) for k in counts[files[0]]}
            expected = score({f: predictions[f] for f in files}, {f: targets[f] for f in files})[0][1]
            assert event_score(score, summed) == pytest.approx(expected, abs=1e-12), (name, files)


# --- hearflow.report.compare between two commits --------------------------------------------------------


def _commit(repo, metrics, intervals, message):
    (repo / "reports").mkdir(exist_ok=True)
    (repo / "reports" / "metrics.json").write_text(json.dumps(metrics))
    (repo / "reports" / "metrics_ci.json").write_text(json.dumps(intervals))
    env = dict(
        os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@t", GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@t"
    )
    subprocess.run(["git", "add", "-A"], cwd=repo, check=True, env=env)
    subprocess.run(["git", "commit", "-qm", message], cwd=repo, check=True, env=env)


def test_compare_reports_planted_changes_between_two_commits(tmp_path):
    """A test repository with two commits of reports/metrics.json and metrics_ci.json: one cell
    improved beyond its noise, one regressed (an error rate that went up), one moved within its
    noise, one without intervals; `python -m hearflow.report.compare HEAD~1 HEAD` says so, reading git
    only, and `--fail-on worse` exits 1."""
    repo = tmp_path / "repo"
    repo.mkdir()
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    ci = lambda se: {"std": se, "se": se, "low": None, "high": None, "seeds": 3}  # noqa: E731
    old = {"a": {"t1": {"top1_acc": 0.50}, "t2": {"segment_1s_er": 0.40, "x": 1.0}}, "b": {"t1": {"top1_acc": 0.70}}}
    new = {"a": {"t1": {"top1_acc": 0.60}, "t2": {"segment_1s_er": 0.55, "x": 1.0}}, "b": {"t1": {"top1_acc": 0.72}}}
    intervals = {
        "a": {"t1": {"top1_acc": ci(0.01)}, "t2": {"segment_1s_er": ci(0.02)}},
        "b": {"t1": {"top1_acc": ci(0.03)}},
    }
    _commit(repo, old, intervals, "old")
    _commit(repo, new, intervals, "new")
    _commit(repo, {"c": {"t1": {"top1_acc": 0.5}}}, {}, "unrelated")  # HEAD moves on; the revisions are named
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    cmd = [sys.executable, "-m", "hearflow.report.compare", "HEAD~2", "HEAD~1", "--json", "--root", str(repo)]
    res = subprocess.run(cmd, capture_output=True, text=True, env=env)
    assert res.returncode == 0, res.stderr
    verdicts = {(r["config"], r["task"], r["metric"]): r["verdict"] for r in json.loads(res.stdout)}
    assert verdicts == {
        ("a", "t1", "top1_acc"): "better",
        ("a", "t2", "segment_1s_er"): "worse",  # lower is better
        ("b", "t1", "top1_acc"): "within noise",
    }
    everything = subprocess.run([*cmd, "--all"], capture_output=True, text=True, env=env)
    assert ("a", "t2", "x") in {(r["config"], r["task"], r["metric"]) for r in json.loads(everything.stdout)}
    table = subprocess.run(
        [*cmd[:-3], "--root", str(repo), "--output", str(tmp_path / "cmp.md"), "--fail-on", "worse"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert table.returncode == 1 and "| a | t2 | segment_1s_er | 40.0 | 55.0 | +15.0 |" in table.stdout
    assert (tmp_path / "cmp.md").read_text() == table.stdout
