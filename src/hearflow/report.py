"""reports/metrics.json and the per-ablation Markdown tables.

metrics.json is `{config: {task: {metric: value}}}` (test scores, mean over folds), the
file `dvc metrics diff` compares across commits. A metric that is undefined on a split
(heareval's d' is NaN when a class has no positive test clip and infinite at AUC 1) is
written as null, so that the file stays valid JSON; tables show it as "n/a".
"""

from __future__ import annotations

import math
from pathlib import Path

from hearflow.io import read_json, write_json, write_text

LOWER_IS_BETTER = {"segment_1s_er"}
RAW_SCALE = {"d_prime", "segment_1s_er"}  # shown as they are; the rest in percent


def collect_metrics(score_files: list[Path]) -> dict[str, dict[str, dict[str, float]]]:
    """{config: {task: {metric: mean test value}}} from results/probe/<config>/<task>/scores.json."""
    metrics: dict = {}
    for path in sorted(score_files):
        cfg, task = path.parent.parent.name, path.parent.name
        values = read_json(path)["metrics"]
        metrics.setdefault(cfg, {})[task] = {
            m: round(float(v), 6) if v is not None and math.isfinite(v) else None for m, v in values.items()
        }
    return metrics


def write_metrics(score_files: list[Path], out: Path) -> dict:
    metrics = collect_metrics(score_files)
    write_json(out, metrics)
    return metrics


def format_value(metric: str, value: float | None) -> str:
    if value is None:  # undefined on this split
        return "n/a"
    return f"{value:.3f}" if metric in RAW_SCALE else f"{100 * value:.1f}"


def markdown_table(
    metrics: dict, configs: list[str], tasks: list[str], order: dict[str, list[str]] | None = None
) -> str:
    """Configs as rows; one column per (task, metric); the best value of a column in bold.

    `order` gives each task's metrics in its `evaluation` order (the first selects models).
    """
    order = order or {}
    columns = [(t, m) for t in tasks for m in order.get(t, metrics[configs[0]][t])]
    head = ["config"] + [f"{t} {m} {'↓' if m in LOWER_IS_BETTER else '↑'}" for t, m in columns]
    best = {}
    for t, m in columns:
        vals = [metrics[c][t][m] for c in configs if metrics[c][t][m] is not None]
        if vals:
            best[t, m] = min(vals) if m in LOWER_IS_BETTER else max(vals)
    rows = []
    for c in configs:
        cells = []
        for t, m in columns:
            v = metrics[c][t][m]
            text = format_value(m, v)
            is_best = v is not None and best.get((t, m)) == v and len(configs) > 1
            cells.append(f"**{text}**" if is_best else text)
        rows.append([c] + cells)
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def write_table(
    metrics_file: Path, score_files: list[Path], out: Path, *, title: str, configs: list[str], suite: str
) -> str:
    """Write one ablation group's table, flagged when any number comes from a stand-in model."""
    metrics = read_json(metrics_file)
    tasks = sorted({t for c in configs for t in metrics[c]})
    scores = [read_json(p) for p in score_files]
    stand_in = any(s.get("stand_in") for s in scores)
    order = {p.parent.name: s["evaluation"] for p, s in zip(score_files, scores) if "evaluation" in s}
    parts = [f"# {title} ({suite} suite)\n"]
    if stand_in:
        parts.append(
            "> Untrained stand-in models: wav2vec2/HuBERT here are tiny random networks of the\n"
            "> real architecture. These numbers test the pipeline; they say nothing about the\n"
            "> pretrained models of the paper.\n"
        )
    parts.append(
        "Test scores of the HEAR protocol (mean over folds); accuracies, mAP and F-measures in %,\n"
        "d' and error rates as they are; best per column in bold.\n"
    )
    parts.append(markdown_table(metrics, configs, tasks, order))
    text = "\n".join(parts)
    write_text(out, text)
    return text


def write_score_plot(score_files: list[Path], out: Path) -> list[dict]:
    """reports/plots/scores.csv for `dvc plots`: one row per (task, config) with the task's
    first `evaluation` metric (the one that selects models), rows sorted by task then config."""
    import csv
    import io

    rows = []
    for path in sorted(score_files, key=lambda p: (p.parent.name, p.parent.parent.name)):
        cfg, task = path.parent.parent.name, path.parent.name
        scores = read_json(path)
        metric = scores["evaluation"][0]
        value = scores["metrics"][metric]
        value = round(float(value), 6) if value is not None and math.isfinite(value) else None
        rows.append({"entry": f"{task} / {cfg}", "task": task, "config": cfg, "metric": metric, "score": value})
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=["entry", "task", "config", "metric", "score"], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text(out, buf.getvalue())
    return rows
