"""Orchestration overhead: planning the real suite, and DVC's status check on the demo workspace.

    .venv/bin/python benchmarks/overhead.py      # writes reports/benchmarks/overhead.{json,md}

1. `snakemake -n --config suite=hear2021` with every paper config (all 20 tasks): wall time
   of the dry run, median of 3 (target <= 10 s). Needs no network and no data.
2. `dvc status` in this workspace (target <= 10 s). Meaningful on an up-to-date workspace,
   i.e. after `dvc repro`; the script records whether DVC reported it up to date.
"""

from __future__ import annotations

import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET_S = 10.0
REPEATS = 3


def _timed(cmd: list[str]) -> tuple[float, subprocess.CompletedProcess]:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    start = time.perf_counter()
    res = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    return time.perf_counter() - start, res


def main() -> None:
    bindir = Path(sys.executable).parent
    rows = []

    times, jobs = [], None
    for _ in range(REPEATS):
        wall, res = _timed([sys.executable, "-m", "snakemake", "-n", "--config", "suite=hear2021"])
        if res.returncode != 0:
            sys.exit(f"snakemake -n failed:\n{res.stdout[-2000:]}\n{res.stderr[-2000:]}")
        times.append(wall)
        m = re.search(r"^total\s+(\d+)$", res.stdout + res.stderr, re.M)
        jobs = int(m.group(1)) if m else None
    rows.append(
        {
            "what": "snakemake -n --config suite=hear2021 (every paper config, 20 tasks)",
            "seconds": round(statistics.median(times), 2),
            "runs": [round(t, 2) for t in times],
            "jobs_planned": jobs,
            "target_s": TARGET_S,
        }
    )

    times, up_to_date = [], None
    dvc = str(bindir / "dvc") if (bindir / "dvc").exists() else "dvc"
    for _ in range(REPEATS):
        wall, res = _timed([dvc, "status"])
        times.append(wall)
        text = res.stdout + res.stderr
        up_to_date = res.returncode == 0 and ("up to date" in text or not text.strip())
    rows.append(
        {
            "what": "dvc status (demo workspace)",
            "seconds": round(statistics.median(times), 2),
            "runs": [round(t, 2) for t in times],
            "workspace_up_to_date": up_to_date,
            "target_s": TARGET_S,
        }
    )
    for r in rows:
        r["met"] = r["seconds"] <= TARGET_S

    out = ROOT / "reports" / "benchmarks"
    out.mkdir(parents=True, exist_ok=True)
    result = {
        "benchmark": "overhead",
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
        "versions": {"python": platform.python_version()},
        "results": rows,
    }
    (out / "overhead.json").write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    lines = [
        "# Orchestration overhead",
        "",
        "`.venv/bin/python benchmarks/overhead.py` (median of 3)",
        "",
        "| what | seconds | target | met | notes |",
        "|---|---:|---:|---|---|",
    ]
    for r in rows:
        note = (
            f"{r['jobs_planned']} jobs planned"
            if "jobs_planned" in r
            else (
                "workspace up to date"
                if r.get("workspace_up_to_date")
                else "workspace NOT up to date (run dvc repro first)"
            )
        )
        lines.append(
            f"| `{r['what']}` | {r['seconds']} | <= {r['target_s']} | {'yes' if r['met'] else 'no'} | {note} |"
        )
    (out / "overhead.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
