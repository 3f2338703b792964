"""Compare the committed scores of two revisions, cell by cell, with their noise.

    python -m hearflow.report.compare HEAD~1                 # HEAD~1 against the working tree
    python -m hearflow.report.compare v1 v2 --all            # every metric, not only each task's first
    python -m hearflow.report.compare HEAD~1 --output reports/compare.md --fail-on worse   # a file; exit 1 on a regression

Reads reports/metrics.json (means) and reports/metrics_ci.json (intervals: hearflow.report.intervals)
of each side from git (`git show <rev>:<path>`; a side not given is the working tree), and
recomputes nothing. Per configuration, task and metric: old, new, new minus old with its 95%
interval and a verdict (hearflow.report.stats.compare): `better` or `worse` when the interval excludes
zero (by the metric's direction), `within noise` otherwise, `no interval` when neither side has
one (one probe seed without resamples), `n/a` when a side has no value. The two runs' resamples
are not shared, so their uncertainties add as independent (conservative: same test clips).
`dvc metrics diff` shows the same files without the verdicts.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from hearflow.report.metrics import LOWER_IS_BETTER, RAW_SCALE
from hearflow.report.stats import compare

METRICS = "reports/metrics.json"
INTERVALS = "reports/metrics_ci.json"
COLUMNS = ["config", "task", "metric", "old", "new", "diff", "low", "high", "verdict"]


def read_side(rev: str | None, path: str, root: Path) -> dict | None:
    """A JSON file at a revision (None: the working tree); None where it does not exist."""
    if rev is None:
        file = root / path
        return json.loads(file.read_text()) if file.is_file() else None
    res = subprocess.run(["git", "show", f"{rev}:{path}"], cwd=root, capture_output=True, text=True)
    if res.returncode != 0:
        if "exists on disk, but not in" in res.stderr or "does not exist in" in res.stderr:
            return None
        raise SystemExit(f"hearflow.report.compare: git show {rev}:{path}: {res.stderr.strip()}")
    return json.loads(res.stdout)


def cells(metrics: dict, intervals: dict | None) -> dict[tuple[str, str, str], dict]:
    """{(config, task, metric): {"mean", "se"}} of one side."""
    out = {}
    for cfg, tasks in metrics.items():
        for task, values in tasks.items():
            for metric, mean in values.items():
                ci = ((intervals or {}).get(cfg, {}).get(task, {}) or {}).get(metric) or {}
                out[cfg, task, metric] = {"mean": mean, "se": ci.get("se")}
    return out


def rows(old: dict, new: dict, *, primary_only: bool = True) -> list[dict]:
    """One row per (config, task, metric) present on both sides (each task's first metric only
    unless `primary_only` is off), in the new side's order."""
    out = []
    firsts: dict[tuple[str, str], str] = {}
    for (cfg, task, metric), cell in new.items():
        first = firsts.setdefault((cfg, task), metric)
        if (cfg, task, metric) not in old or (primary_only and metric != first):
            continue
        verdict = compare(old[cfg, task, metric], cell, higher_is_better=metric not in LOWER_IS_BETTER)
        out.append({"config": cfg, "task": task, "metric": metric, **verdict})
    return out


def _fmt(metric: str, value, signed: bool = False) -> str:
    if value is None:
        return "n/a"
    scale, digits = (1, 3) if metric in RAW_SCALE else (100, 1)
    return f"{scale * value:{'+' if signed else ''}.{digits}f}"


def to_markdown(table: list[dict], old_label: str, new_label: str) -> str:
    lines = [
        f"# Scores: {new_label} against {old_label}",
        "",
        "Every metric in %, d' as is; Δ = new − old with its 95% interval (hearflow.report.compare).",
        "",
        "| config | task | metric | old | new | Δ | 95% interval | verdict |",
        "|---|---|---|---:|---:|---:|---|---|",
    ]
    for r in table:
        m = r["metric"]
        ci = "" if r["low"] is None else f"[{_fmt(m, r['low'], True)}, {_fmt(m, r['high'], True)}]"
        lines.append(
            f"| {r['config']} | {r['task']} | {m} | {_fmt(m, r['old'])} | {_fmt(m, r['new'])} "
            f"| {_fmt(m, r['diff'], True)} | {ci} | {r['verdict']} |"
        )
    counts = {v: sum(r["verdict"] == v for r in table) for v in ("better", "worse", "within noise", "no interval")}
    lines += ["", ", ".join(f"{v}: {n}" for v, n in counts.items() if n) or "no cell in common"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("old", help="the revision to compare against (e.g. HEAD~1, a tag)")
    parser.add_argument("new", nargs="?", help="the revision compared (default: the working tree)")
    parser.add_argument("--all", action="store_true", help="every metric, not only each task's first")
    parser.add_argument("--json", action="store_true", help="print JSON rows instead of a table")
    parser.add_argument("--output", type=Path, help="also write the comparison here (.json or .md)")
    parser.add_argument("--fail-on", choices=["worse"], help="exit 1 if any cell is worse")
    parser.add_argument("--root", type=Path, default=Path.cwd(), help="the repository (default: here)")
    args = parser.parse_args(argv)
    sides = []
    for rev in (args.old, args.new):
        metrics = read_side(rev, METRICS, args.root)
        if metrics is None:
            raise SystemExit(f"hearflow.report.compare: no {METRICS} at {rev or 'the working tree'}")
        sides.append(cells(metrics, read_side(rev, INTERVALS, args.root)))
    table = rows(*sides, primary_only=not args.all)
    new_label = args.new or "working tree"
    text = json.dumps(table, indent=1) + "\n" if args.json else to_markdown(table, args.old, new_label)
    sys.stdout.write(text)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        body = (
            json.dumps(table, indent=1) + "\n"
            if args.output.suffix == ".json"
            else to_markdown(table, args.old, new_label)
        )
        args.output.write_text(body)
    return 1 if args.fail_on == "worse" and any(r["verdict"] == "worse" for r in table) else 0


if __name__ == "__main__":
    sys.exit(main())
