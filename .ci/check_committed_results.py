#!/usr/bin/env python3
"""After the README main job: did this machine regenerate the committed results?

Compares reports/metrics.json byte for byte with the committed one (git HEAD), and the
digest of every member and config embedding output in dvc.lock (rewritten by `dvc repro`)
with the committed dvc.lock. Prints each difference; exits 1 if there is any. Issue 18:
results must not depend on the machine (hearflow.core.numerics, docs/numerics.md).

    python .ci/check_committed_results.py [--rev HEAD]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
EMBEDDINGS = ("results/members/", "results/configs/")


def committed(rev: str, path: str) -> bytes:
    return subprocess.run(["git", "show", f"{rev}:{path}"], cwd=ROOT, capture_output=True, check=True).stdout


def embedding_digests(lock: dict) -> dict[str, str]:
    """{output path: md5} of every embedding folder a stage of the lock file writes."""
    out = {}
    for stage in lock.get("stages", {}).values():
        for o in stage.get("outs", []):
            if o["path"].startswith(EMBEDDINGS):
                out[o["path"]] = o.get("md5")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rev", default="HEAD", help="the commit whose results this run must equal")
    rev = ap.parse_args().rev
    problems = []
    metrics_now = (ROOT / "reports" / "metrics.json").read_bytes()
    if metrics_now != committed(rev, "reports/metrics.json"):
        import json

        old, new = json.loads(committed(rev, "reports/metrics.json")), json.loads(metrics_now)
        diffs = [
            (c, t, m, old.get(c, {}).get(t, {}).get(m), v)
            for c, tasks in new.items()
            for t, ms in tasks.items()
            for m, v in ms.items()
            if old.get(c, {}).get(t, {}).get(m) != v
        ]
        problems.append(f"reports/metrics.json differs from {rev}'s: {len(diffs)} values")
        problems += [f"  {c} / {t} / {m}: committed {a}, now {b}" for c, t, m, a, b in diffs[:40]]
    old = embedding_digests(yaml.safe_load(committed(rev, "dvc.lock")))
    new = embedding_digests(yaml.safe_load((ROOT / "dvc.lock").read_text()))
    if set(old) != set(new):
        problems.append(f"dvc.lock: embedding outputs {sorted(set(old) ^ set(new))} are in one lock only")
    changed = sorted(p for p in set(old) & set(new) if old[p] != new[p])
    if changed:
        problems.append(f"dvc.lock: {len(changed)} of {len(old)} embedding digests differ from {rev}'s:")
        problems += [f"  {p}: committed {old[p]}, now {new[p]}" for p in changed]
    if problems:
        print("check_committed_results: this machine did not regenerate the committed results", file=sys.stderr)
        print("\n".join(problems), file=sys.stderr)
        return 1
    print(f"check_committed_results: reports/metrics.json and all {len(new)} embedding digests equal {rev}'s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
