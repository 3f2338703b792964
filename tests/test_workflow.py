"""The real Snakefile on the demo suite: planning, lint, and a reduced end-to-end run."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from hearflow.core import hear
from tests.conftest import ROOT, copy_checkout

SNAKEMAKE = [sys.executable, "-m", "snakemake"]
PHASES = {
    "demo_archive",
    "download",
    "extract",
    "resample",
    "standin",
    "embed",
    "ensemble",
    "probe_wide",  # the demo's probe jobs are wide (suites.demo.probe_jobs)
    "metrics",
    "table",
    "figure_scores",
    "figure_ablations",
    "figure_tsne",
    "report_html",
}
REDUCED = {
    "demo": {"scale": 0.2},
    "suites": {
        "demo": {
            "configs": ["fusion_cat_xwc", "avg_xwc", "crepe", "hubert_xlarge"],
            "overrides": {
                "ensemble": {"dim": 32},
                "probe": {
                    "max_grid_points": 1,
                    "grid": {"hidden_dim": [32], "max_epochs": [6], "patience": [2]},
                    "linear": {"epochs": 5},
                },
            },
        }
    },
}


def _snakemake(cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(cwd / "src"))
    res = subprocess.run([*SNAKEMAKE, *args], cwd=cwd, env=env, capture_output=True, text=True)
    if check and res.returncode != 0:
        pytest.fail(f"snakemake {' '.join(args)} failed:\n{res.stdout[-4000:]}\n{res.stderr[-4000:]}")
    return res


def _planned_rules(output: str) -> dict[str, int]:
    """Job counts from the 'Job stats' table of a dry run."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("job ") or line.strip().startswith("job "))
    counts = {}
    for line in lines[start + 2 :]:
        parts = line.split()
        if len(parts) != 2 or not parts[1].isdigit():
            break
        counts[parts[0]] = int(parts[1])
    return counts


def _copy_repo(dest: Path) -> Path:
    """A clean copy of the checkout (what a fresh clone holds), without data or results."""
    return copy_checkout(dest, exclude=(".dvc/",))


def test_dry_run_plans_every_phase(tmp_path):
    counts = _planned_rules(_snakemake(_copy_repo(tmp_path / "repo"), "-n").stdout)
    assert PHASES <= set(counts)
    assert counts["embed"] == 4 * 4  # one job per (model, task), not per configuration
    assert counts["resample"] == 2 * 4  # 16 kHz (CREPE, stand-ins) and 32 kHz (logmel)
    assert counts["probe_layers"] == 2 * 3  # SSL stand-ins x scene tasks (events have no layers/)
    assert counts["probe_wide"] == 14 and "probe" not in counts  # one per demo config, every task


def test_hear2021_dry_run_needs_no_network(tmp_path):
    counts = _planned_rules(_snakemake(_copy_repo(tmp_path / "repo"), "-n", "--config", "suite=hear2021").stdout)
    assert counts["download"] == 20 and counts["extract"] == 20
    assert counts["resample"] == 2 * 20  # to 16 and 32 kHz
    assert counts["embed"] == 6 * 20  # hubert_xlarge, hubert_large, wav2vec2_large, crepe_full, logmel, passt
    assert "demo_archive" not in counts
    assert counts["probe_layers"] == 3 * 18  # hubert_xlarge, hubert_large, wav2vec2_large x scene tasks
    assert counts["probe"] == 15 * 20 and "probe_wide" not in counts  # narrow: one per (config, task)


def test_lint_is_clean():
    res = _snakemake(ROOT, "--lint")
    assert "Congratulations, your workflow is in a good condition!" in res.stdout + res.stderr


def test_invalid_params_stop_before_any_job(tmp_path):
    repo = _copy_repo(tmp_path / "repo")
    res = _snakemake(repo, "-n", "--config", "seed=minus-one", check=False)
    assert res.returncode != 0
    assert "params: seed: 'minus-one' is not of type 'integer'" in res.stdout + res.stderr


@pytest.mark.e2e
def test_reduced_demo_end_to_end(reduced_local_run):
    repo = reduced_local_run

    metrics = json.loads((repo / "reports" / "metrics.json").read_text())
    tasks = yaml.safe_load((repo / "params.yaml").read_text())["suites"]["demo"]["tasks"]
    assert set(metrics) == set(REDUCED["suites"]["demo"]["configs"])
    for cfg, by_task in metrics.items():
        assert set(by_task) == set(tasks)
        for task, values in by_task.items():
            expected = hear.Task.load(repo / "data" / "tasks" / "16000" / task).metadata["evaluation"]
            assert set(values) == set(expected), (cfg, task)
            for metric, v in values.items():  # d' is undefined (null) on tiny splits
                assert (v is None and metric == "d_prime") or np.isfinite(v), (cfg, task, metric, v)

    table2 = (repo / "reports" / "tables" / "table2_baselines.md").read_text()
    assert "Untrained stand-in models" in table2
    head = next(line for line in table2.splitlines() if line.startswith("| task |"))
    assert [c.strip() for c in head.strip("|").split("|")] == [
        "task",
        "metric",
        "crepe",
        "hubert_xlarge",
        "fusion_cat_xwc",
    ]
    for ext in ("csv", "tex"):
        assert (repo / "reports" / "tables" / f"table2_baselines.{ext}").stat().st_size > 0
    # figures (no ablation pair has both configs in this run) and the HTML report
    for name in ("scores_by_category", "tsne_fusion"):
        for ext in ("png", "pdf", "txt"):
            assert (repo / "reports" / "figures" / f"{name}.{ext}").stat().st_size > 0, (name, ext)
        assert (repo / "reports" / "plots" / f"{name}.csv").stat().st_size > 0
    html = (repo / "reports" / "report.html").read_text()
    assert all(f'id="{t}"' in html for t in ("table2_baselines", "table3_fusion", "table5_crepe", "tsne_fusion"))

    cfg_dir = repo / "results" / "configs" / "fusion_cat_xwc" / "demo_events-v1-full"
    dims = json.loads((cfg_dir / "test.embedding-dimensions.json").read_text())
    assert dims[1] == 3 * 32 and (cfg_dir / "test.embeddings.npy").stat().st_size == dims[0] * dims[1] * 4
    scores = json.loads((repo / "results" / "probe" / "crepe" / "demo_tones-v1-full" / "scores.json").read_text())
    assert scores["engine"] == "native" and scores["seed"] == 42 and scores["stand_in"] is False
    xwc = json.loads((repo / "results" / "probe" / "fusion_cat_xwc" / "demo_tones-v1-full" / "scores.json").read_text())
    assert xwc["stand_in"] is True
    layers = json.loads(
        (repo / "results" / "probe_layers" / "hubert_standin" / "demo_tones-v1-full" / "scores.json").read_text()
    )
    assert layers["metric"] == "pitch_acc" and layers["engine"] == "linear" and layers["stand_in"] is True
    assert [entry["layer"] for entry in layers["layers"]] == list(range(len(layers["layers"])))
    assert len(layers["layers"]) > 1 and all(0.0 <= entry["score"] <= 1.0 for entry in layers["layers"])

    again = _snakemake(repo, "-n", "--configfile", "reduced.yaml")
    assert "Nothing to be done" in again.stdout + again.stderr, again.stdout[-3000:]

    # Determinism: derive, probe and report again from the same member embeddings.
    first = (repo / "reports" / "metrics.json").read_bytes()
    for path in ("results/configs", "results/probe", "reports/metrics.json"):
        target = repo / path
        shutil.rmtree(target) if target.is_dir() else target.unlink()
    _snakemake(repo, "--cores", "2", "--configfile", "reduced.yaml")
    assert (repo / "reports" / "metrics.json").read_bytes() == first
