"""The real Snakefile on the demo suite: planning, lint, and a reduced end-to-end run."""

from __future__ import annotations

import json
import os
import re
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
    assert counts["probe_wide"] == 14 and "probe" not in counts  # one per demo config, every task
    # one per SSL stand-in over its 3 scene tasks (events have no layers/)
    assert counts["probe_layers_wide"] == 2 and "probe_layers" not in counts


def test_hear2021_dry_run_needs_no_network(tmp_path):
    counts = _planned_rules(_snakemake(_copy_repo(tmp_path / "repo"), "-n", "--config", "suite=hear2021").stdout)
    assert counts["download"] == 20 and counts["extract"] == 20
    assert counts["resample"] == 2 * 20  # to 16 and 32 kHz
    assert counts["embed"] == 6 * 20  # hubert_xlarge, hubert_large, wav2vec2_large, crepe_full, logmel, passt
    assert "demo_archive" not in counts
    assert counts["probe_layers"] == 3 * 18  # hubert_xlarge, hubert_large, wav2vec2_large x scene tasks
    assert "probe_layers_wide" not in counts
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


def _report_data(html: str, name: str) -> dict:
    """The JSON object a Snakemake report assigns to `var <name> = {...}` (its results and categories)."""
    start = html.index(f'var {name} = {{"') + len(f"var {name} = ")
    return json.JSONDecoder().raw_decode(html, start)[0]


@pytest.mark.e2e
def test_snakemake_report_has_a_category_per_phase_and_every_result_captioned(reduced_local_run, chromium, tmp_path):
    """`snakemake --report` after the reduced run: a category per phase, a subcategory per table
    and figure, every item with its caption (rules/captions/*.rst); it opens in Chromium."""
    from tests.conftest import chromium_render

    repo = reduced_local_run
    _snakemake(repo, "--configfile", "reduced.yaml", "--report", "snakemake-report.html")
    html = (repo / "snakemake-report.html").read_text()
    categories, results = _report_data(html, "categories"), _report_data(html, "results")
    assert sorted(categories) == ["1. Data", "2. Embed", "3. Ensemble", "4. Probe", "5. Report"]
    tasks = yaml.safe_load((repo / "params.yaml").read_text())["suites"]["demo"]["tasks"]
    assert set(categories["1. Data"]) == set(tasks)
    assert set(categories["4. Probe"]) >= set(REDUCED["suites"]["demo"]["configs"])
    for cfg in REDUCED["suites"]["demo"]["configs"]:
        assert sorted(categories["4. Probe"][cfg]) == sorted(f"results/probe/{cfg}/{t}/scores.json" for t in tasks)
    report = categories["5. Report"]
    assert sorted(report["metrics"]) == ["reports/metrics.json", "reports/metrics_ci.json", "reports/plots/scores.csv"]
    for table in ("table2_baselines", "table3_fusion", "table5_crepe"):
        assert sorted(report[table]) == [f"reports/tables/{table}.{ext}" for ext in ("csv", "md", "tex")]
    for figure in ("scores_by_category", "tsne_fusion"):
        assert sorted(report[figure]) == [f"reports/figures/{figure}.png", f"reports/plots/{figure}.csv"]
    listed = {path for subs in categories.values() for paths in subs.values() for path in paths}
    assert listed == set(results)
    for path, item in results.items():  # every item rendered its caption, with the job's values filled in
        assert len(re.sub("<[^>]+>", "", item["caption"])) > 80 and "{{" not in item["caption"], path
    assert (
        "<strong>table2_baselines</strong>, regenerated for the demo suite"
        in results["reports/tables/table2_baselines.md"]["caption"]
    )

    dom, _, log = chromium_render(repo / "snakemake-report.html", tmp_path, size=(1400, 2000))
    assert not [line for line in log.splitlines() if "Uncaught" in line or ":ERROR:CONSOLE" in line]
    assert all(name in dom for name in categories) and "suite: <strong>demo</strong>" in dom
