#!/usr/bin/env python3
"""After the README main job: did this machine regenerate the committed results?

Compares reports/metrics.json byte for byte with the committed one (git HEAD), and the
digest of every member and config embedding output in dvc.lock (rewritten by `dvc repro`)
with the committed dvc.lock. Prints each difference; exits 1 if there is any. Issue 18:
results must not depend on the machine (hearflow.core.numerics, docs/numerics.md).

Known limit (docs/limits.md): reproducible mode holds across AMD machines and across Intel
machines, not between the two; the log-mel embeddings and the probes round differently. So
reports/numerics/vendors.json records, per CPU vendor, what the main job regenerates there
(`--record`, run after the main job on a machine of that vendor), and a machine of a recorded
vendor is held to its record; any other machine to the committed files. Whoever changes the
results regenerates them and records their own vendor's; a record of the other vendor is then
stale: regenerate it there, or drop it (CI on that vendor fails until then).

    python .ci/check_committed_results.py [--rev HEAD]
    python .ci/check_committed_results.py --record      # this machine's vendor's results
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
EMBEDDINGS = ("results/members/", "results/configs/")
RECORD = "reports/numerics/vendors.json"


def committed(root: Path, rev: str, path: str) -> bytes:
    return subprocess.run(["git", "show", f"{rev}:{path}"], cwd=root, capture_output=True, check=True).stdout


def cpuinfo(field: str, default: str) -> str:
    """The first `field` of /proc/cpuinfo (vendor_id, model name), or `default`."""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith(field):
            return line.split(":", 1)[1].strip()
    return default


def cpu_vendor() -> str:
    """The CPU's vendor id (GenuineIntel, AuthenticAMD); HEARFLOW_CPU_VENDOR overrides it (tests)."""
    return os.environ.get("HEARFLOW_CPU_VENDOR") or cpuinfo("vendor_id", "unknown")


def source(root: Path) -> str:
    """'the main job at <commit> on <CPU model>': what a record says it was made from."""
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True).stdout
    model = cpuinfo("model name", "unknown CPU")
    return f"the main job at {head.strip() or 'an unknown commit'} on {model}, {os.cpu_count()} cores"


def embedding_digests(lock: dict) -> dict[str, str]:
    """{output path: md5} of every embedding folder a stage of the lock file writes."""
    out = {}
    for stage in lock.get("stages", {}).values():
        for o in stage.get("outs", []):
            if o["path"].startswith(EMBEDDINGS):
                out[o["path"]] = o.get("md5")
    return out


def results_of(metrics: bytes, lock: dict) -> dict:
    return {"metrics_sha256": hashlib.sha256(metrics).hexdigest(), "embeddings": embedding_digests(lock)}


def differences(expected: dict, metrics_now: bytes, lock_now: dict, where: str) -> list[str]:
    problems = []
    if hashlib.sha256(metrics_now).hexdigest() != expected["metrics_sha256"]:
        problems.append(f"reports/metrics.json differs from {where}")
        if "metrics" in expected:
            old, new = json.loads(expected["metrics"]), json.loads(metrics_now)
            diffs = [
                (c, t, m, old.get(c, {}).get(t, {}).get(m), v)
                for c, tasks in new.items()
                for t, ms in tasks.items()
                for m, v in ms.items()
                if old.get(c, {}).get(t, {}).get(m) != v
            ]
            problems[-1] += f": {len(diffs)} values"
            problems += [f"  {c} / {t} / {m}: committed {a}, now {b}" for c, t, m, a, b in diffs[:40]]
    old, new = expected["embeddings"], embedding_digests(lock_now)
    if set(old) != set(new):
        problems.append(f"dvc.lock: embedding outputs {sorted(set(old) ^ set(new))} are in one lock only")
    changed = sorted(p for p in set(old) & set(new) if old[p] != new[p])
    if changed:
        problems.append(f"dvc.lock: {len(changed)} of {len(old)} embedding digests differ from {where}:")
        problems += [f"  {p}: committed {old[p]}, now {new[p]}" for p in changed]
    return problems


def main(argv: list[str] | None = None, root: Path = ROOT) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rev", default="HEAD", help="the commit whose results this run must equal")
    ap.add_argument("--record", action="store_true", help=f"write this machine's vendor's results into {RECORD}")
    ap.add_argument(
        "--source", default=None, help="with --record: where the results come from (default: commit and CPU)"
    )
    args = ap.parse_args(argv)
    vendor = cpu_vendor()
    metrics_now = (root / "reports" / "metrics.json").read_bytes()
    lock_now = yaml.safe_load((root / "dvc.lock").read_text())
    record_file = root / RECORD
    record = json.loads(record_file.read_text()) if record_file.is_file() else {}
    if args.record:
        record[vendor] = results_of(metrics_now, lock_now) | {"source": args.source or source(root)}
        record_file.parent.mkdir(parents=True, exist_ok=True)
        record_file.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
        print(f"check_committed_results: recorded {vendor}'s results in {RECORD}")
        return 0
    if vendor in record:
        expected, where = record[vendor], f"{RECORD}'s {vendor} record"
    else:
        metrics_then = committed(root, args.rev, "reports/metrics.json")
        expected = results_of(metrics_then, yaml.safe_load(committed(root, args.rev, "dvc.lock")))
        expected["metrics"] = metrics_then
        where = f"{args.rev}'s"
    problems = differences(expected, metrics_now, lock_now, where)
    if problems:
        print(
            f"check_committed_results: this machine ({vendor}) did not regenerate the committed results",
            file=sys.stderr,
        )
        print("\n".join(problems), file=sys.stderr)
        return 1
    n = len(expected["embeddings"])
    print(f"check_committed_results: reports/metrics.json and all {n} embedding digests equal {where} ({vendor})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
