"""The reliability table: every fault of the fault-injection suite injected --repeat times.

    python benchmarks/faults.py --repeat 2      # reports/benchmarks/faults.{json,md}, docs/reliability.md

Each repeat runs the suite's tests in a fresh pytest process (tests/test_faults.py: head
process killed in each phase under `dvc repro` and `snakemake`, one job killed, two runs at
once, disk full; tests/test_dvcrun.py: damaged DVC cache files; with --slurm, tests/test_slurm.py:
a job cancelled with scancel) with HEARFLOW_FAULT_RECORDS set: each test appends one row per
fault it injected, once every assertion about it has held (recovered, results identical to the
uninterrupted run). A fault whose test failed has no row for that repeat, and counts as not
recovered. The table (fault, where, injected, recovered, jobs in flight at the fault and so
run again, finished outputs kept, results identical) goes to reports/benchmarks/faults.md
and, between its markers, into docs/reliability.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from xml.etree import ElementTree

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "reports" / "benchmarks"
DOC = ROOT / "docs" / "reliability.md"
BEGIN, END = "<!-- faults-table: benchmarks/faults.py -->", "<!-- /faults-table -->"
TESTS = [
    "tests/test_faults.py",
    "tests/test_dvcrun.py::test_a_cache_file_damaged_silently_is_never_handed_to_a_job",
]
SLURM_TEST = "tests/test_slurm.py::test_demo_on_slurm_matches_the_local_run"


def run_once(tests: list[str], records: Path) -> tuple[int, float, dict[str, bool]]:
    """One pytest run of the suite: (exit status, seconds, {test name: passed})."""
    env = dict(os.environ, HEARFLOW_FAULT_RECORDS=str(records))
    junit = records.with_suffix(".xml")
    t0 = time.monotonic()
    res = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={junit}", *tests],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    wall = time.monotonic() - t0
    outcome = {}
    if junit.is_file():
        for case in ElementTree.parse(junit).iter("testcase"):
            bad = any(child.tag in ("failure", "error", "skipped") for child in case)
            outcome[case.get("name", "").split("[")[0]] = not bad
    if res.returncode not in (0, 1):
        print(res.stdout[-3000:], res.stderr[-3000:], file=sys.stderr)
    return res.returncode, wall, outcome


def table(rows: list[dict], repeats: int, failed: dict[str, int]) -> str:
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for row in rows:
        groups[(row["fault"], row["where"])].append(row)
    lines = [
        "| fault | where | injected | recovered | jobs in flight (run again) | finished outputs kept | results identical |",
        "|---|---|---:|---:|---|---|---|",
    ]

    def spread(values: list) -> str:
        values = [v for v in values if v is not None]
        if not values:
            return "n/a"
        lo, hi = min(values), max(values)
        return str(lo) if lo == hi else f"{lo}-{hi}"

    for (fault, where), group in groups.items():
        refused = all(r.get("refused") for r in group)
        lines.append(
            f"| {fault} | {where} | {repeats} | {len(group)} | "
            + ("refused, first run unharmed" if refused else spread([r.get("in_flight") for r in group]))
            + f" | {'n/a' if refused else spread([r.get('kept') for r in group])} | "
            + ("yes" if all(r.get("identical") for r in group) else "no")
            + " |"
        )
    for test, n in failed.items():
        if not n:
            continue
        lines.append(f"| faults of `{test}` (failed {n} of {repeats} repeats) | | {repeats} | {repeats - n} | | | |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=2, help="runs of the whole suite (default 2)")
    ap.add_argument("--slurm", action="store_true", help=f"add {SLURM_TEST} (needs root and slurm-wlm)")
    args = ap.parse_args(argv)
    tests = TESTS + ([SLURM_TEST] if args.slurm else [])
    rows, runs, failed = [], [], defaultdict(int)
    with tempfile.TemporaryDirectory(prefix="faults-") as tmp:
        for i in range(args.repeat):
            records = Path(tmp) / f"records-{i}.jsonl"
            rc, wall, outcome = run_once(tests, records)
            got = [json.loads(line) for line in records.read_text().splitlines()] if records.exists() else []
            for test, passed in outcome.items():
                failed[test] += not passed
            rows += got
            runs.append({"repeat": i + 1, "exit": rc, "wall_s": round(wall, 1), "rows": len(got)})
            print(f"repeat {i + 1}: pytest exit {rc}, {wall:.0f} s, {len(got)} faults recorded", flush=True)
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout
    md = table(rows, args.repeat, dict(failed))
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "faults.json").write_text(json.dumps({"machine": machine, "runs": runs, "rows": rows}, indent=1) + "\n")
    head = (
        f"# Fault injection\n\n`python benchmarks/faults.py --repeat {args.repeat}"
        + (" --slurm" if args.slurm else "")
        + f"` at {commit.strip()} on {machine}: "
        + ", ".join(f"repeat {r['repeat']} {r['wall_s']:.0f} s (pytest exit {r['exit']})" for r in runs)
        + ".\n\n"
    )
    (OUT / "faults.md").write_text(head + md)
    text = DOC.read_text()
    if BEGIN in text and END in text:
        before, rest = text.split(BEGIN, 1)
        DOC.write_text(before + BEGIN + "\n" + md + END + rest.split(END, 1)[1])
    print(head + md)
    return 0 if all(r["exit"] == 0 for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
