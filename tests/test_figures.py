"""Figures and their plot data: normalisation, ablation deltas, t-SNE inputs, layer curves."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from hearflow.core import hear
from hearflow.report.figures import (
    ablation_deltas,
    clip_embeddings,
    normalised_scores,
    read_layer_scores,
    write_ablation_figure,
    write_layer_figure,
    write_scores_figure,
    write_tsne_figure,
)
from hearflow.report.tables import read_paper_values
from tests.conftest import ROOT
from tests.test_report import CATALOG, fake_hear2021_metrics

PAPER_CSV = ROOT / "reports" / "paper" / "tables.csv"
PAPER = read_paper_values(PAPER_CSV)
FACTS = {t: {k: f[k] for k in ("category", "embedding_type", "evaluation")} for t, f in CATALOG.items()}
DEMO_FACTS = {
    "tones": {"category": "music", "embedding_type": "scene", "evaluation": ["pitch_acc", "chroma_acc"]},
    "events": {
        "category": "general",
        "embedding_type": "event",
        "evaluation": ["event_onset_200ms_fms", "segment_1s_er"],
    },
}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _check_figure(stem):
    png, pdf = stem.with_suffix(".png"), stem.with_suffix(".pdf")
    assert png.read_bytes()[:8] == PNG_MAGIC and png.stat().st_size > 5000
    assert pdf.read_bytes()[:5] == b"%PDF-"


def _read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_hear2021_scores_are_normalised_by_the_best_published_score():
    metrics = fake_hear2021_metrics()
    rows, kind, left_out = normalised_scores(metrics, FACTS, PAPER, ["fusion_cat_xwc", "crepe"])
    assert kind == "paper"
    # the four task directories the paper does not print have no reference
    assert sorted(left_out) == sorted(
        [
            "nsynth_pitch-v2.2.3-5h",
            "speech_commands-v0.0.2-5h",
            "beehive_states_fold0-v2-full",
            "beehive_states_fold1-v2-full",
        ]
    )
    sc = next(r for r in rows if r["config"] == "fusion_cat_xwc" and r["task"] == "speech_commands-v0.0.2-full")
    assert sc["reference"] == 96.9  # the best the paper prints for Speech Commands: Table 3's fusion wav2vec2
    assert sc["normalised"] == pytest.approx(97.3 / 96.9)
    gtzan = next(r for r in rows if r["config"] == "crepe" and r["task"] == "tfds_gtzan-1.0.0-full")
    assert gtzan["reference"] == 88.3  # PaSST's, from Table 2
    assert {r["category"] for r in rows} == {"speech", "music", "general"}


def test_demo_scores_are_normalised_by_our_best_config():
    metrics = {
        "a": {"tones": {"pitch_acc": 0.8}, "events": {"event_onset_200ms_fms": 0.5}},
        "b": {"tones": {"pitch_acc": 0.4}, "events": {"event_onset_200ms_fms": 0.25}},
    }
    rows, kind, left_out = normalised_scores(metrics, DEMO_FACTS, PAPER, ["a", "b"])
    assert kind == "ours" and left_out == []
    got = {(r["config"], r["task"]): r["normalised"] for r in rows}
    assert got == {("a", "tones"): 1.0, ("b", "tones"): 0.5, ("a", "events"): 1.0, ("b", "events"): 0.5}


def test_ablation_deltas_flip_lower_is_better_and_carry_the_papers_delta():
    facts = {"dc": {"category": "general", "embedding_type": "event", "evaluation": ["segment_1s_er"]}}
    metrics = {"avg_xw": {"dc": {"segment_1s_er": 0.6}}, "cat_xw": {"dc": {"segment_1s_er": 0.5}}}
    (row,) = ablation_deltas(metrics, facts, {}, [["avg_xw", "cat_xw"]])
    assert row["ours"] == pytest.approx(10.0)  # 10 points fewer errors: the variant helps
    # with the real tasks, the paper's Table 4 difference comes along (cat_xw - avg_xw on DCASE onset FMS)
    rows = ablation_deltas(fake_hear2021_metrics(), FACTS, PAPER, [["avg_xw", "cat_xw"]])
    dcase = next(r for r in rows if r["task"] == "dcase2016_task2-hear2021-full")
    assert dcase["metric"] == "event_onset_200ms_fms"
    assert dcase["paper"] == pytest.approx(45.2 - 41.7)
    assert dcase["ours"] == pytest.approx(45.2 - 41.7)  # the fake scores are the paper's + 0.5 each
    assert next(r for r in rows if r["task"] == "beehive_states_fold0-v2-full")["paper"] is None


def test_scores_and_ablation_figures_with_plot_data(tmp_path):
    metrics_file = tmp_path / "metrics.json"
    metrics_file.write_text(json.dumps(fake_hear2021_metrics()))
    configs = ["logmel", "crepe", "wav2vec2_large", "hubert_xlarge", "fusion_cat_xwc", "avg_xw", "cat_xw"]
    caption = write_scores_figure(
        metrics_file,
        PAPER_CSV,
        tmp_path / "s",
        tmp_path / "s.csv",
        tmp_path / "s.txt",
        configs=configs,
        facts=FACTS,
        suite="hear2021",
    )
    _check_figure(tmp_path / "s")
    assert "best score the paper prints" in caption and "beehive_states_fold0-v2-full" in caption
    data = _read_csv(tmp_path / "s.csv")
    assert len(data) == len(configs) * 16 and set(data[0]) == {
        "config",
        "task",
        "category",
        "metric",
        "score",
        "reference",
        "normalised",
    }
    caption = write_ablation_figure(
        metrics_file,
        PAPER_CSV,
        tmp_path / "a",
        tmp_path / "a.csv",
        tmp_path / "a.txt",
        pairs=[["avg_xw", "cat_xw"], ["hubert_xlarge", "fusion_cat_xwc"]],
        facts=FACTS,
        suite="hear2021",
        stand_in=True,
    )
    _check_figure(tmp_path / "a")
    assert "Black ticks" in caption and "stand-in" in caption
    assert len(_read_csv(tmp_path / "a.csv")) == 2 * 20


def _embedding_dir(root, rows_per_split, dim=8, files=None, seed=0):
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True)
    for split, n in rows_per_split.items():
        hear.write_embeddings(root, split, rng.normal(size=(n, dim)).astype(np.float32))
        if files:
            hear.write_filename_timestamps(
                root, split, [(f"{i // files}.wav", 12.5 + 20 * (i % files)) for i in range(n)]
            )
    return root


def test_clip_embeddings_draw_clips_and_average_event_frames(tmp_path):
    scene = _embedding_dir(tmp_path / "scene", {"train": 30, "test": 10})
    x = clip_embeddings(scene, 25, np.random.default_rng(0))
    assert x.shape == (25, 8)
    assert clip_embeddings(scene, 100, np.random.default_rng(0)).shape == (40, 8)  # all clips at most
    event = _embedding_dir(tmp_path / "event", {"test": 12}, files=4)  # 3 clips of 4 frames
    x = clip_embeddings(event, 10, np.random.default_rng(0))
    frames = hear.read_embeddings(event, "test")
    assert x.shape == (3, 8)
    np.testing.assert_allclose(x, frames.reshape(3, 4, 8).mean(axis=1), rtol=1e-6)


def test_tsne_figure_has_one_point_per_drawn_clip(tmp_path):
    members = {}
    for model in ("hubert", "wav2vec2"):
        members[model] = {}
        for k, task in enumerate(("t1", "t2")):
            d = tmp_path / model / task
            _embedding_dir(d / "fusion", {"train": 20, "test": 10}, seed=k)
            members[model][task] = d
    write_tsne_figure(
        members,
        tmp_path / "tsne",
        tmp_path / "tsne.csv",
        tmp_path / "tsne.txt",
        points_per_task=15,
        perplexity=50,
        seed=0,
        suite="demo",
    )
    _check_figure(tmp_path / "tsne")
    data = _read_csv(tmp_path / "tsne.csv")
    assert len(data) == 2 * 2 * 15
    assert {(r["model"], r["task"]) for r in data} == {(m, t) for m in ("hubert", "wav2vec2") for t in ("t1", "t2")}
    assert all(np.isfinite(float(r["x"])) and np.isfinite(float(r["y"])) for r in data)


def _layer_scores(root, model, task, metric, scores, **extra):
    path = root / model / task / "scores.json"
    path.parent.mkdir(parents=True)
    path.write_text(
        json.dumps(
            {
                "metric": metric,
                "layers": [{"layer": i, "score": s} for i, s in scores],
                "engine": "native",
                "seed": 42,
                **extra,
            }
        )
    )
    return path


def test_layer_curves_follow_the_probe_layers_contract(tmp_path):
    files = [
        _layer_scores(tmp_path, "hubert_standin", "tones", "pitch_acc", [(1, 0.5), (0, 0.25), (2, 0.75)]),
        _layer_scores(tmp_path, "wav2vec2_standin", "tones", "pitch_acc", [(0, 0.2), (1, 0.3), (2, 0.1)]),
        _layer_scores(tmp_path, "hubert_standin", "mix", "d_prime", [(0, 1.5), (1, None), (2, 2.0)], stand_in=True),
    ]
    rows = read_layer_scores(files)
    tones = [(r["layer"], r["score"]) for r in rows if r["model"] == "hubert_standin" and r["task"] == "tones"]
    assert tones == [(0, 25.0), (1, 50.0), (2, 75.0)]  # sorted by layer, percent
    assert [r["score"] for r in rows if r["task"] == "mix"] == [1.5, None, 2.0]  # d' as is
    caption = write_layer_figure(
        files, tmp_path / "layers", tmp_path / "layers.csv", tmp_path / "layers.txt", suite="demo", stand_in=True
    )
    _check_figure(tmp_path / "layers")
    assert "stand-in" in caption and len(_read_csv(tmp_path / "layers.csv")) == 9


def test_ablation_figure_draws_paired_intervals_in_the_deltas_units(tmp_path):
    """With score files of three seeds and clip resamples, each delta gets its paired 95%
    interval (hearflow.report.stats.paired on the same numbers), in points and with the sign flipped
    where lower is better, and is marked significant when the interval excludes zero."""
    from hearflow.report.stats import paired

    facts = {"dc": {"category": "general", "embedding_type": "event", "evaluation": ["segment_1s_er"]}}
    reps = [[0.55, 0.6, 0.65], [0.57, 0.6, 0.63], [0.58, 0.61, 0.62]]
    files = []
    for cfg, shift in (("avg_xw", 0.0), ("cat_xw", -0.1)):  # cat_xw: 10 points fewer errors on every resample
        per_seed = [
            {"seed": 42 + i, "metrics": {"segment_1s_er": 0.6 + shift + 0.01 * i}, "replicates": {"segment_1s_er": [r + shift for r in rs]}}
            for i, rs in enumerate(reps)
        ]  # fmt: skip
        path = tmp_path / cfg / "dc" / "scores.json"
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps({"metrics": {"segment_1s_er": 0.61 + shift}, "per_seed": per_seed, "seed": 42}))
        files.append(path)
    metrics_file = tmp_path / "metrics.json"
    metrics_file.write_text(
        json.dumps({"avg_xw": {"dc": {"segment_1s_er": 0.61}}, "cat_xw": {"dc": {"segment_1s_er": 0.51}}})
    )
    caption = write_ablation_figure(
        metrics_file, PAPER_CSV, tmp_path / "a", tmp_path / "a.csv", tmp_path / "a.txt",
        pairs=[["avg_xw", "cat_xw"]], facts=facts, suite="demo", score_files=files,
    )  # fmt: skip
    _check_figure(tmp_path / "a")
    (row,) = _read_csv(tmp_path / "a.csv")
    expected = paired([0.6, 0.61, 0.62], reps, [0.5, 0.51, 0.52], [[r - 0.1 for r in rs] for rs in reps])
    assert float(row["ours"]) == pytest.approx(10.0)
    assert float(row["low"]) == pytest.approx(-100 * expected["high"]) and float(row["high"]) == pytest.approx(
        -100 * expected["low"]
    )
    assert row["significant"] == "True" and "Whiskers" in caption
