"""The resource planner (hearflow.workflow.plan) against outside references: the authors' module
sizes, Snakemake's own DAG, a measured Slurm run, hand computations, and docs/planner.md.
Its sizes against what a hear2021-sim run wrote: tests/test_sim.py."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
import yaml

from hearflow.workflow import plan, sizes
from hearflow.workflow.config import load_params, make_plan
from hearflow.workflow.keys import deep_merge
from tests.conftest import ROOT

PARAMS = load_params(ROOT / "params.yaml")


def test_config_sizes_are_the_authors_module_sizes():
    """Embedding sizes of the paper's configurations as the authors' GURA modules output them
    (tony10101105/HEAR-2021-NeurIPS-Challenge---NTU-GURA: fusion_cat_xwc.py and cat_xwc 3 x
    1024 = 3072, fusion_cat_xwc_time.py 5 x 3072 = 15360 per scene, avg_* 1024,
    cat_hubert_wav2vec2 / cat_wc 2048, hubert_xlarge 1280, wav2vec2 1024), CREPE full 2048
    (hear-baseline torchcrepe.py), PaSST mode all 1295 (hear21passt wrapper.py)."""
    p = make_plan(dict(PARAMS, suite="hear2021"))
    facts = {m: sizes.model_facts(m, spec, {}) for m, spec in p.models.items()}
    expected = {
        "fusion_cat_xwc": 3072,
        "cat_xwc": 3072,
        "avg_xwc": 1024,
        "cat_wc": 2048,
        "avg_xc": 1024,
        "avg_xw": 1024,
        "cat_xw": 2048,
        "fusion_cat_xwc_time": 3072,
        "fusion_hubert_xlarge": 1280,
        "hubert_xlarge": 1280,
        "fusion_wav2vec2_large": 1024,
        "wav2vec2_large": 1024,
        "crepe": 2048,
        "passt": 1295,
        "logmel": 128,
    }
    assert {c: sizes.config_dim(cfg, facts) for c, cfg in p.configs.items()} == expected
    assert p.configs["fusion_cat_xwc_time"].pooling == {"groups": 5}  # 15360 per scene clip
    assert (facts["hubert_xlarge"].hidden_states, facts["wav2vec2_large"].hidden_states) == (49, 25)


def test_wav_and_frame_counts_by_hand():
    shape = sizes.TaskShape("t", "general", ["train"], True, 2, [(1.0, 3), (0.5, 2)])
    assert sizes.wav_bytes(shape, 16000) == 3 * (44 + 32000) + 2 * (44 + 16000)
    ssl = sizes.ModelFacts("x", 16000, 32, 5, 20.0, None, None)
    assert sizes.clip_frames(1.0, ssl) == 49  # (16000 - 400) // 320 + 1: wav2vec2's 400/320 convolution
    mel = sizes.ModelFacts("m", 32000, 128, 1, 10.0, None, None)
    assert sizes.clip_frames(1.0, mel) == 101 and sizes.event_frames(shape, mel) == 3 * 101 + 2 * 51


def test_gpu_hours_by_hand():
    m = sizes.ModelFacts("x", 16000, 1280, 49, 20.0, 103.0, None)
    gpu = {"peak_tflops": 19.5, "mfu": 0.3}
    # 1 h of audio x 103 GFLOP per audio second / (19.5 TFLOP/s x 0.3) = 63.4 s of GPU
    assert plan.gpu_hours(3600.0, m, gpu) == pytest.approx(3600 * 103 / (19.5e3 * 0.3) / 3600)
    measured = sizes.ModelFacts("x", 16000, 1280, 49, 20.0, 103.0, 200.0)
    assert plan.gpu_hours(3600.0, measured, gpu) == pytest.approx(3600 / 200 / 3600)  # measured wins


def test_slurm_submissions_of_the_demo_equal_the_measured_run():
    """reports/benchmarks/orchestration.json: `snakemake --profile slurm` on the one-node
    cluster submitted 45 Slurm jobs for the demo (profiles/slurm groups), with one probe job
    per (config, task) as then (narrow; the wide probe jobs of today's demo fold each
    config's ensembles and probes into one component: 3 submissions fewer, and its 6
    layer-wise probes into one job per model: 4 fewer)."""
    rows = json.loads((ROOT / "reports" / "benchmarks" / "orchestration.json").read_text())["rows"]
    measured = {r["case"]: r for r in rows}["slurm snakemake"]["slurm_jobs"]
    profile = yaml.safe_load((ROOT / "profiles" / "slurm" / "config.yaml").read_text())
    narrow = deep_merge(PARAMS, {"suites": {"demo": {"probe_jobs": "narrow"}}})
    assert plan.slurm_jobs(plan.job_counts(narrow, "demo"), profile) == measured == 45
    assert plan.slurm_jobs(plan.job_counts(PARAMS, "demo"), profile) == 38


@pytest.mark.parametrize("suite", ["hear2021", "hear2021-sim"])
def test_job_counts_equal_snakemake_s_own_dag(suite):
    res = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--forceall", "--quiet", "rules", "--config", f"suite={suite}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    stats = dict(re.findall(r"^(\w+)\s+(\d+)$", res.stdout + res.stderr, re.M))
    dag = {rule: int(n) for rule, n in stats.items() if rule not in ("all", "total")}
    counts = plan.job_counts(PARAMS, suite)
    report = counts.pop("report")
    ours = {r: n for r, n in counts.items() if n}
    assert {r: n for r, n in dag.items() if r in ours} == ours
    assert sum(n for r, n in dag.items() if r not in ours) == report


def test_docs_and_committed_plans_are_the_planner_s_output():
    """docs/planner.md's full-suite table and reports/plan/<suite>.md are what `snakemake plan`
    writes now (regenerate with it after changing params.yaml or the catalog)."""
    full = plan.render(plan.make(PARAMS, "hear2021"))
    page = (ROOT / "docs" / "planner.md").read_text()
    block = page.split("<!-- plan:hear2021 -->\n", 1)[1].split("<!-- /plan -->", 1)[0]
    assert block == full.split("\n", 3)[3]  # the table and what follows (no title)
    for suite in ("hear2021", "hear2021-sim"):
        assert (ROOT / "reports" / "plan" / f"{suite}.md").read_text() == plan.render(plan.make(PARAMS, suite))


def test_cli_prints_the_plan_and_refuses_an_unknown_suite(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "hearflow.workflow.plan", "--suite", "hear2021", "--json", str(tmp_path / "p.json")],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert out.returncode == 0 and "| **total** |" in out.stdout
    data = json.loads((tmp_path / "p.json").read_text())
    assert len(data["tasks"]) == 20 and data["total"]["dvc_cache_type"] == "hardlink,copy"
    bad = subprocess.run(
        [sys.executable, "-m", "hearflow.workflow.plan", "--suite", "nope"], capture_output=True, text=True
    )
    assert bad.returncode == 2 and "not a suite" in bad.stderr
