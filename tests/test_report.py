"""metrics.json merging and the Markdown ablation tables."""

from __future__ import annotations

import json

from hearflow.report import collect_metrics, markdown_table, write_table


def _scores(root, cfg, task, metrics, stand_in=False):
    path = root / cfg / task / "scores.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"metrics": metrics, "stand_in": stand_in}))
    return path


def test_metrics_nest_config_task_metric_and_null_undefined_values(tmp_path):
    files = [
        _scores(tmp_path, "cat_xwc", "t1", {"top1_acc": 0.5}),
        _scores(tmp_path, "cat_xwc", "t2", {"mAP": 0.25, "d_prime": float("nan")}),
        _scores(tmp_path, "crepe", "t2", {"mAP": 0.75, "d_prime": float("inf")}),
    ]
    metrics = collect_metrics(files)
    assert metrics == {"cat_xwc": {"t1": {"top1_acc": 0.5}, "t2": {"mAP": 0.25, "d_prime": None}},
                       "crepe": {"t2": {"mAP": 0.75, "d_prime": None}}}
    json.loads(json.dumps(metrics, allow_nan=False))  # valid JSON for dvc metrics


def test_table_bolds_the_best_per_column_and_respects_direction():
    metrics = {
        "a": {"t": {"top1_acc": 0.9, "segment_1s_er": 0.4}},
        "b": {"t": {"top1_acc": 0.8, "segment_1s_er": 0.3}},
    }
    table = markdown_table(metrics, ["a", "b"], ["t"])
    assert "| config | t top1_acc ↑ | t segment_1s_er ↓ |" in table
    assert "| a | **90.0** | 0.400 |" in table and "| b | 80.0 | **0.300** |" in table


def test_table_flags_stand_in_numbers(tmp_path):
    files = [_scores(tmp_path / "p", "x", "t", {"top1_acc": 0.5}, stand_in=True)]
    (tmp_path / "metrics.json").write_text(json.dumps(collect_metrics(files)))
    text = write_table(tmp_path / "metrics.json", files, tmp_path / "t.md", title="g", configs=["x"], suite="demo")
    assert "Untrained stand-in models" in text and (tmp_path / "t.md").read_text() == text


def test_score_plot_has_one_row_per_task_and_config_with_the_first_metric(tmp_path):
    from hearflow.report import write_score_plot

    files = []
    for cfg, task, metrics, evaluation in [
        ("crepe", "t2", {"mAP": 0.75, "d_prime": 1.5}, ["mAP", "d_prime"]),
        ("avg_xc", "t1", {"segment_1s_er": 0.4, "event_onset_200ms_fms": 0.6}, ["event_onset_200ms_fms", "segment_1s_er"]),
        ("crepe", "t1", {"segment_1s_er": 0.3, "event_onset_200ms_fms": float("nan")}, ["event_onset_200ms_fms", "segment_1s_er"]),
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
