"""metrics.json merging and the paper's Tables 2-6 (Markdown, CSV, LaTeX), demo and hear2021 layouts."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from hearflow.data.catalog import load_catalog
from hearflow.report.formats import read_table_csv, to_csv, to_latex, to_markdown, write_tables
from hearflow.report.metrics import collect_metrics
from hearflow.report.tables import build_table, paper_columns, read_paper_values
from hearflow.workflow.targets import task_facts
from tests.conftest import ROOT

PAPER = read_paper_values(ROOT / "reports" / "paper" / "tables.csv")
CATALOG = load_catalog(ROOT / "catalog" / "hear2021.yaml")
TABLES = {  # params.yaml report.tables
    "table2_baselines": ["logmel", "crepe", "wav2vec2_large", "hubert_xlarge", "fusion_cat_xwc"],
    "table3_fusion": ["hubert_xlarge", "fusion_hubert_xlarge", "wav2vec2_large", "fusion_wav2vec2_large"],
    "table4_avg_vs_cat": ["avg_xw", "cat_xw"],
    "table5_crepe": ["hubert_xlarge", "avg_xc"],
    "table6_hubert": ["cat_wc", "cat_xwc"],
}
SC, DC = "speech_commands-v0.0.2-full", "dcase2016_task2-hear2021-full"


def _scores(root, cfg, task, metrics, stand_in=False):
    path = root / cfg / task / "scores.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"metrics": metrics, "stand_in": stand_in}))
    return path


def _rows(markdown: str) -> list[list[str]]:
    return [[c.strip() for c in line.strip("|").split("|")] for line in markdown.splitlines() if line.startswith("| ")]


def fake_hear2021_metrics(seed: int = 0) -> dict:
    """Every config of params.yaml on all 20 tasks: the paper's value (as a fraction) plus 0.5
    points where the paper prints one, a seeded random score elsewhere."""
    rng = np.random.default_rng(seed)
    configs = {c for cs in TABLES.values() for c in cs}
    metrics = {}
    for cfg in sorted(configs):
        for task, facts in CATALOG.items():
            values = {}
            for metric in facts["evaluation"]:
                published = next((v for (_, m, t, k), v in PAPER.items() if (m, t, k) == (cfg, task, metric)), None)
                if published is None:
                    values[metric] = float(rng.uniform(1, 3)) if metric == "d_prime" else float(rng.uniform(0.1, 0.9))
                elif metric == "d_prime":
                    values[metric] = published + 0.005
                else:
                    values[metric] = (published + 0.5) / 100
            metrics.setdefault(cfg, {})[task] = values
    return metrics


def test_metrics_nest_config_task_metric_and_null_undefined_values(tmp_path):
    files = [
        _scores(tmp_path, "cat_xwc", "t1", {"top1_acc": 0.5}),
        _scores(tmp_path, "cat_xwc", "t2", {"mAP": 0.25, "d_prime": float("nan")}),
        _scores(tmp_path, "crepe", "t2", {"mAP": 0.75, "d_prime": float("inf")}),
    ]
    metrics = collect_metrics(files)
    assert metrics == {
        "cat_xwc": {"t1": {"top1_acc": 0.5}, "t2": {"mAP": 0.25, "d_prime": None}},
        "crepe": {"t2": {"mAP": 0.75, "d_prime": None}},
    }
    json.loads(json.dumps(metrics, allow_nan=False))  # valid JSON for dvc metrics


def test_demo_table_bolds_best_underlines_second_and_respects_direction():
    metrics = {
        "a": {"t": {"top1_acc": 0.9, "segment_1s_er": 0.4}},
        "b": {"t": {"top1_acc": 0.8, "segment_1s_er": 0.3}},
        "c": {"t": {"top1_acc": 0.7, "segment_1s_er": None}},
    }
    table = build_table("table4_x", metrics, ["a", "b", "c"], ["t"], {"t": ["top1_acc", "segment_1s_er"]}, PAPER)
    assert not table.compare and table.paper_only == []  # demo tasks are not the paper's
    rows = _rows(to_markdown(table))
    assert rows[0] == ["task", "metric", "a", "b", "c"]
    assert rows[1] == ["t", "top1_acc ↑", "**90.0**", "<u>80.0</u>", "70.0"]
    # lower is better; only two values compete in this row, so the second is not underlined
    assert rows[2] == ["t", "segment_1s_er ↓", "40.0", "**30.0**", "n/a"]


def test_second_is_underlined_only_when_three_values_compete():
    metrics = {"a": {"t": {"top1_acc": 0.9}}, "b": {"t": {"top1_acc": 0.8}}}
    table = build_table("t", metrics, ["a", "b"], ["t"], {"t": ["top1_acc"]}, PAPER)
    assert _rows(to_markdown(table))[1] == ["t", "top1_acc ↑", "**90.0**", "80.0"]


def test_ties_share_the_rank_on_printed_values():
    metrics = {"a": {"t": {"top1_acc": 0.96667}}, "b": {"t": {"top1_acc": 0.966671}}, "c": {"t": {"top1_acc": 0.5}}}
    table = build_table("t", metrics, ["a", "b", "c"], ["t"], {"t": ["top1_acc"]}, PAPER)
    assert _rows(to_markdown(table))[1] == ["t", "top1_acc ↑", "**96.7**", "**96.7**", "<u>50.0</u>"]


@pytest.mark.parametrize("name", sorted(TABLES))
def test_hear2021_layout_with_fake_metrics(name):
    metrics = fake_hear2021_metrics()
    tasks = list(CATALOG)
    evaluation = {t: f["evaluation"] for t, f in CATALOG.items()}
    table = build_table(name, metrics, TABLES[name], tasks, evaluation, PAPER, suite="hear2021")
    table_id = name.split("_")[0]
    assert table.compare
    # columns: the other teams' rows of the paper (Table 2 only), then our configs in params order
    expected_paper_only = ["passt", "panns", "wav2clip", "byol_s", "efficientnet_b2"] if table_id == "table2" else []
    assert table.paper_only == expected_paper_only
    assert table.methods == expected_paper_only + TABLES[name]
    # rows: the paper's 21 (task, metric) columns in printed order, then the tasks it leaves out
    printed = paper_columns(PAPER, table_id)
    assert len(printed) == 21
    keys = [(r.task, r.metric) for r in table.rows]
    assert keys[:21] == printed
    extra = [
        "nsynth_pitch-v2.2.3-5h",
        "speech_commands-v0.0.2-5h",
        "beehive_states_fold0-v2-full",
        "beehive_states_fold1-v2-full",
    ]
    assert keys[21:] == [(t, m) for t in tasks if t in extra for m in CATALOG[t]["evaluation"]]

    md = to_markdown(table)
    rows = _rows(md)
    assert rows[0] == ["task", "metric"] + [f"{m} (paper)" for m in expected_paper_only] + TABLES[name]
    assert len(rows) == 1 + len(keys)
    # our configs' cells on a published column read "ours / paper (+0.5)"; logmel is not in the paper
    for row in rows[1:22]:
        for method, cell in zip(TABLES[name], row[2 + len(expected_paper_only) :]):
            plain = re.sub(r"\*\*|</?u>", "", cell)
            if method == "logmel":
                assert plain.endswith(" / –"), (row, cell)
                continue
            m = re.fullmatch(r"(\d+\.\d+) / (\d+\.\d+) \((\+\d+\.\d+)\)", plain)
            assert m, (row, cell)
            assert m.group(3) in ("+0.5", "+0.005")
    # cells of unpublished tasks: "ours / –"
    assert all(cell.endswith(" / –") for row in rows[22:] for cell in row[2 + len(expected_paper_only) :])


def test_hear2021_table2_cells_and_ranks():
    metrics = fake_hear2021_metrics()
    evaluation = {t: f["evaluation"] for t, f in CATALOG.items()}
    table = build_table(
        "table2_baselines", metrics, TABLES["table2_baselines"], list(CATALOG), evaluation, PAPER, suite="hear2021"
    )
    rows = {(r[0], r[1]): r[2:] for r in _rows(to_markdown(table))[1:]}
    head = _rows(to_markdown(table))[0][2:]
    sc = dict(zip(head, rows[SC, "top1_acc ↑"]))
    # Speech Commands: fusion 96.8 in the paper, ours 97.3 -> best of the row
    assert sc["fusion_cat_xwc"] == "**97.3** / 96.8 (+0.5)"
    assert sc["passt (paper)"] == "63.9"
    ranked = sorted(
        ((c, v) for c, v in sc.items()), key=lambda cv: -float(re.sub(r"[^\d.].*", "", re.sub(r"\*\*|<u>", "", cv[1])))
    )
    assert ranked[1][1].startswith("<u>")  # the runner-up is underlined
    # the error rate is lower-is-better and printed in percent, as in the paper (fusion 14.5, PaSST 9.9)
    er = dict(zip(head, rows[DC, "segment_1s_er ↓"]))
    assert er["passt (paper)"] == "**9.9**"
    assert er["fusion_cat_xwc"].startswith("<u>15.0</u> / 14.5")
    # d' stays as printed (3 decimals)
    assert dict(zip(head, rows["fsd50k-v1.0-full", "d_prime ↑"]))["fusion_cat_xwc"].endswith("/ 2.052 (+0.005)")


def test_latex_is_booktabs_and_marks_best_and_second():
    metrics = fake_hear2021_metrics()
    evaluation = {t: f["evaluation"] for t, f in CATALOG.items()}
    table = build_table(
        "table2_baselines", metrics, TABLES["table2_baselines"], list(CATALOG), evaluation, PAPER, suite="hear2021"
    )
    tex = to_latex(table)
    lines = tex.splitlines()
    assert lines.index(r"\toprule") < lines.index(r"\midrule") < lines.index(r"\bottomrule")
    assert r"\begin{tabular}{ll" + "r" * 10 + "}" in tex
    body = lines[lines.index(r"\midrule") + 1 : lines.index(r"\bottomrule")]
    assert len(body) == len(table.rows) and all(line.endswith(r"\\") for line in body)
    assert all(line.count("&") == 11 for line in body)
    sc = next(line for line in body if line.startswith(r"speech\_commands-v0.0.2-full & top1\_acc"))
    assert r"\textbf{97.3} / 96.8 (+0.5)" in sc and r"\underline{" in sc
    assert r"\label{tab:table2_baselines}" in tex  # labels keep their underscores
    assert "$\\downarrow$" in tex and "_" not in tex.replace(r"\_", "").replace("tab:table2_baselines", "")
    assert "–" not in tex and "↑" not in tex  # no raw unicode marks left for pdflatex


def test_csv_round_trip_renders_the_same_table(tmp_path):
    metrics = fake_hear2021_metrics()
    evaluation = {t: f["evaluation"] for t, f in CATALOG.items()}
    for name, configs in TABLES.items():
        table = build_table(name, metrics, configs, list(CATALOG), evaluation, PAPER, suite="hear2021")
        (tmp_path / f"{name}.csv").write_text(to_csv(table))
        again = read_table_csv(tmp_path / f"{name}.csv", suite="hear2021")
        assert to_markdown(again) == to_markdown(table)
        assert to_latex(again) == to_latex(table)


def test_write_tables_writes_three_formats_and_flags_stand_ins(tmp_path):
    files = [_scores(tmp_path / "p", "x", "t", {"top1_acc": 0.5}, stand_in=True)]
    (tmp_path / "metrics.json").write_text(json.dumps(collect_metrics(files)))
    outs = {ext: tmp_path / "tables" / f"g.{ext}" for ext in ("md", "csv", "tex")}
    write_tables(
        tmp_path / "metrics.json",
        ROOT / "reports" / "paper" / "tables.csv",
        files,
        outs,
        name="table4_avg_vs_cat",
        configs=["x"],
        tasks=["t"],
        evaluation={"t": ["top1_acc"]},
        suite="demo",
    )
    assert "Untrained stand-in models" in outs["md"].read_text()
    assert "Untrained stand-in models" in outs["tex"].read_text()
    assert outs["csv"].read_text().splitlines()[1] == "table4_avg_vs_cat,t,top1_acc,true,x,false,50.0000,,,1,,,"


def test_task_facts_come_from_the_catalog_or_the_demo_tasks():
    facts = task_facts(CATALOG, ["esc50-v2.0.0-full"]) | task_facts({}, ["demo_vowels-v1-full"])
    assert facts["esc50-v2.0.0-full"] == {
        "category": "general",
        "embedding_type": "scene",
        "evaluation": ["top1_acc", "mAP", "d_prime", "aucroc"],
    }
    assert facts["demo_vowels-v1-full"] == {"category": "speech", "embedding_type": "scene", "evaluation": ["top1_acc"]}


def test_score_plot_has_one_row_per_task_and_config_with_the_first_metric(tmp_path):
    from hearflow.report.metrics import write_score_plot

    files = []
    for cfg, task, metrics, evaluation in [
        ("crepe", "t2", {"mAP": 0.75, "d_prime": 1.5}, ["mAP", "d_prime"]),
        (
            "avg_xc",
            "t1",
            {"segment_1s_er": 0.4, "event_onset_200ms_fms": 0.6},
            ["event_onset_200ms_fms", "segment_1s_er"],
        ),
        (
            "crepe",
            "t1",
            {"segment_1s_er": 0.3, "event_onset_200ms_fms": float("nan")},
            ["event_onset_200ms_fms", "segment_1s_er"],
        ),
    ]:
        path = _scores(tmp_path / "p", cfg, task, metrics)
        path.write_text(json.dumps({"metrics": metrics, "evaluation": evaluation}))
        files.append(path)
    out = tmp_path / "scores.csv"
    write_score_plot(files, out)
    assert out.read_text().splitlines() == [
        "entry,task,config,metric,score",
        "t1 / avg_xc,t1,avg_xc,event_onset_200ms_fms,0.6",
        "t1 / crepe,t1,crepe,event_onset_200ms_fms,",
        "t2 / crepe,t2,crepe,mAP,0.75",
    ]


def _seeded(values: list[float], replicates: list[list[float]]) -> dict:
    per_seed = [
        {"seed": 42 + i, "metrics": {"top1_acc": v}, "replicates": {"top1_acc": r}}
        for i, (v, r) in enumerate(zip(values, replicates, strict=True))
    ]
    return {"metrics": {"top1_acc": float(np.mean(values))}, "seed": 42, "per_seed": per_seed}


def test_tables_show_intervals_and_paired_differences_marked_when_they_exclude_zero():
    """Cells read mean ± half the 95% interval; an ablation pair of the table adds a column
    variant − base with its paired interval and a * where that interval excludes 0 (checked
    against hearflow.report.stats on the same numbers, by hand: a shift of +10 points on every seed
    and resample). The CSV round trip keeps both."""
    from hearflow.report.stats import interval, paired

    reps = [[0.6, 0.65, 0.7, 0.75], [0.62, 0.66, 0.71, 0.74], [0.58, 0.64, 0.69, 0.76]]
    base = _seeded([0.66, 0.68, 0.67], reps)
    better = _seeded([0.76, 0.78, 0.77], [[r + 0.1 for r in rs] for rs in reps])
    same = _seeded([0.67, 0.66, 0.68], [rs[::-1] for rs in reps])
    scores = {("a", "t"): base, ("b", "t"): better, ("c", "t"): same}
    metrics = {c: {"t": {"top1_acc": s["metrics"]["top1_acc"]}} for (c, _), s in scores.items()}
    pairs = [["a", "b"], ["a", "c"], ["a", "zz"]]
    table = build_table(
        "table4_x", metrics, ["a", "b", "c"], ["t"], {"t": ["top1_acc"]}, PAPER, scores=scores, pairs=pairs
    )
    assert table.diffs == ["Δ b − a", "Δ c − a"]  # a pair outside the table is left out
    row = _rows(to_markdown(table))[1]  # [0]: the header
    half = (interval([0.66, 0.68, 0.67], reps)["high"] - interval([0.66, 0.68, 0.67], reps)["low"]) / 2
    assert row[2] == f"<u>67.0</u> ± {100 * half:.1f}" and row[3].startswith("**77.0** ± ")  # a ties c
    diff = paired([0.66, 0.68, 0.67], reps, [0.76, 0.78, 0.77], [[r + 0.1 for r in rs] for rs in reps])
    assert diff["mean"] == pytest.approx(0.1) and diff["se"] == pytest.approx(0.0, abs=1e-9)
    assert row[5] == "+10.0 ± 0.0*"
    assert row[6].startswith("+0.0 ± ") and not row[6].endswith("*")
    assert "excludes 0" in to_markdown(table) and "95% interval" in to_markdown(table)
    back = read_table_csv_text(to_csv(table))
    assert to_markdown(back) == to_markdown(table)


def read_table_csv_text(text: str):
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "t.csv"
        path.write_text(text)
        return read_table_csv(path, caption="", suite="")
