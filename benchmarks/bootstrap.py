"""CI's set-up part, `./bootstrap.sh --heareval`, as a fresh machine runs it, before and after a
change: one run per commit, each in a fresh clone with an empty pip cache, one after the other.

    python benchmarks/bootstrap.py --revs 6ec4d8d HEAD     # reports/benchmarks/bootstrap.{json,md}

A fresh CI machine has no pip cache: every wheel (torch and its CUDA libraries, about 3 GB,
twice before 2026-12 when .venv-heareval unpacked its own copy after .venv was done) comes
from PyPI. Here each run gets its own empty PIP_CACHE_DIR, so downloads count as they do
there. Needs network access to PyPI and about 20 GB of free disk per run (the two
virtualenvs and the cache, deleted after each run). Network speed varies from run to run:
compare commits measured in the same session only.
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
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "reports" / "benchmarks"


def run(rev: str, tmp: Path) -> dict:
    work = tmp / "repo"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(work)], check=True)
    subprocess.run(["git", "checkout", "-q", rev], cwd=work, check=True)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=work, capture_output=True, text=True)
    env = dict(os.environ, PIP_CACHE_DIR=str(tmp / "pip-cache"))
    t0 = time.monotonic()
    res = subprocess.run(["./bootstrap.sh", "--heareval"], cwd=work, env=env, capture_output=True, text=True)
    wall = time.monotonic() - t0
    if res.returncode != 0:
        sys.exit(f"{rev}: bootstrap failed after {wall:.0f} s:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}")
    return {"rev": rev, "commit": commit.stdout.strip(), "wall_s": round(wall, 1)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--revs", nargs="+", default=["HEAD"])
    args = ap.parse_args()
    runs = []
    for rev in args.revs:
        with tempfile.TemporaryDirectory(prefix="bootstrap-bench-") as tmp:
            runs.append(run(rev, Path(tmp)))
        print(f"{rev}: {runs[-1]['wall_s']} s", file=sys.stderr)
    result = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "command": "./bootstrap.sh --heareval (fresh clone, empty PIP_CACHE_DIR)",
        "runs": runs,
    }
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "bootstrap.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        "# CI's set-up: `./bootstrap.sh --heareval` from an empty pip cache",
        "",
        f"`python benchmarks/bootstrap.py --revs {' '.join(args.revs)}` on {result['machine']}: each commit in a "
        "fresh clone with an empty PIP_CACHE_DIR (every wheel downloaded from PyPI, as on a fresh CI "
        "machine), one after the other in one session. Network speed varies between sessions.",
        "",
        "| commit | wall (s) |",
        "|---|---:|",
        *[f"| {r['rev']} ({r['commit']}) | {r['wall_s']} |" for r in runs],
        "",
    ]
    (OUT / "bootstrap.md").write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
