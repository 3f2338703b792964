"""reports/metrics.json, the `dvc plots` score file, and the paper's units.

metrics.json is `{config: {task: {metric: value}}}` (test scores, mean over folds), the
file `dvc metrics diff` compares across commits. A metric that is undefined on a split
(heareval's d' is NaN when a class has no positive test clip and infinite at AUC 1) is
written as null, so that the file stays valid JSON; tables show it as "n/a".

Units are the paper's: every metric in percent except d' (as printed).
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

from hearflow.core.io import read_json, write_json, write_text

LOWER_IS_BETTER = {"segment_1s_er"}
RAW_SCALE = {"d_prime"}  # printed as they are; every other metric in percent, as in the paper


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


# ------------------------------------------------------------------------------ units


def higher_is_better(metric: str) -> bool:
    return metric not in LOWER_IS_BETTER


def arrow(metric: str) -> str:
    return "↑" if higher_is_better(metric) else "↓"


def to_paper_units(metric: str, value: float | None) -> float | None:
    """A metrics.json value (fractions) in the paper's units (percent, d' as is)."""
    if value is None:
        return None
    return value if metric in RAW_SCALE else 100 * value


def decimals(metric: str) -> int:
    return 3 if metric in RAW_SCALE else 1


def format_number(metric: str, value: float | None, *, signed: bool = False) -> str:
    """A value in paper units as printed: d' with 3 decimals, percentages with 1."""
    if value is None:  # undefined on this split, or not published
        return "n/a"
    text = f"{value:+.{decimals(metric)}f}" if signed else f"{value:.{decimals(metric)}f}"
    return "+0.0" if signed and text in ("-0.0", "-0.000") else text


def write_score_plot(score_files: list[Path], out: Path) -> list[dict]:
    """reports/plots/scores.csv for `dvc plots`: one row per (task, config) with the task's
    first `evaluation` metric (the one that selects models), rows sorted by task then config."""
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
