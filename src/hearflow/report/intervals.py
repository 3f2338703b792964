"""Intervals of the report: per cell from each scores.json, paired differences of two configs.

    write_intervals(score_files, Path("reports/metrics_ci.json"))
    cell = cell_interval(read_json(scores_file), "pitch_acc")     # hearflow.report.stats.interval
    diff = paired_interval(scores_base, scores_variant, "pitch_acc")

A probe's scores.json holds, with several probe seeds or clip resamples (params probe.seeds,
probe.bootstrap), `per_seed`: [{"seed", "metrics", "replicates": {metric: [B values]}}]. A
one-seed run without resamples has no interval (its fields are null). reports/metrics_ci.json
is `{config: {task: {metric: {"std", "se", "low", "high", "seeds"}}}}` beside metrics.json
(the means), in the same units (fractions; d' as is); `dvc metrics diff` reads both.
"""

from __future__ import annotations

import math
from pathlib import Path

from hearflow.core.io import read_json, write_json
from hearflow.report.stats import interval, paired

FIELDS = ("std", "se", "low", "high")


def cell_samples(scores: dict, metric: str) -> tuple[list[float], list[list[float]] | None]:
    """(per-seed values, per-seed clip-resample values or None) of one metric of a scores.json."""
    seeds = scores.get("per_seed")
    if not seeds:
        return [scores["metrics"][metric]], None
    values = [s["metrics"][metric] for s in seeds]
    reps = [s.get("replicates", {}).get(metric) for s in seeds]
    return values, (reps if all(r for r in reps) else None)


def _finite(values) -> list[float]:
    return [float("nan") if v is None else float(v) for v in values]


def cell_interval(scores: dict, metric: str) -> dict:
    """hearflow.report.stats.interval of one metric of a scores.json; no interval (None fields) for
    one seed without clip resamples."""
    values, reps = cell_samples(scores, metric)
    return interval(_finite(values), reps)


def paired_interval(base: dict, variant: dict, metric: str) -> dict | None:
    """variant minus base of one metric (hearflow.report.stats.paired), None where the two runs do not
    share their seeds (no pairing) or hold one seed without resamples."""
    a_values, a_reps = cell_samples(base, metric)
    b_values, b_reps = cell_samples(variant, metric)
    seeds = lambda s: [x["seed"] for x in s.get("per_seed", [])] or [s.get("seed")]  # noqa: E731
    if seeds(base) != seeds(variant) or (len(a_values) == 1 and (a_reps is None or b_reps is None)):
        return None
    return paired(_finite(a_values), a_reps, _finite(b_values), b_reps)


def _rounded(value):
    return None if value is None or not math.isfinite(value) else round(float(value), 6)


def collect_intervals(score_files: list[Path]) -> dict:
    """{config: {task: {metric: {"std", "se", "low", "high", "seeds"}}}} of every scores.json
    (results/probe/<config>/<task>/scores.json)."""
    out: dict = {}
    for path in sorted(score_files):
        cfg, task = path.parent.parent.name, path.parent.name
        scores = read_json(path)
        cells = {}
        for metric in scores["metrics"]:
            cell = cell_interval(scores, metric)
            cells[metric] = {k: _rounded(cell[k]) for k in FIELDS} | {"seeds": cell["seeds"]}
        out.setdefault(cfg, {})[task] = cells
    return out


def write_intervals(score_files: list[Path], out: Path) -> dict:
    intervals = collect_intervals(score_files)
    write_json(out, intervals)
    return intervals
