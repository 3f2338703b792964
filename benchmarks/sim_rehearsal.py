"""The hear2021-sim rehearsal: its wall time on this machine, where the time goes, and the
planner's sizes against the bytes it wrote.

    python benchmarks/sim_rehearsal.py [--cores 2]   # reports/benchmarks/sim_rehearsal.{json,md}

Runs `snakemake --cores N --config suite=hear2021-sim` (the rehearsal of docs/suites.md) from scratch
in a fresh clone of HEAD and records: the wall time against the issue's 10-minute target,
Snakemake's job count, each rule's jobs and summed job time (.snakemake/metadata), the cost
of a job's start alone (a Python interpreter importing what a probe job imports, measured
here), and for every task the planner's archive, extracted, resampled, member-view and
config-view sizes against the run's (the worst ratios). The machine should be otherwise idle.
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

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "reports" / "benchmarks"
TARGET_S = 600


def _size(path: Path) -> int:
    return path.stat().st_size if path.is_file() else sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def job_records(work: Path) -> dict[tuple[str, float], tuple[float, float]]:
    """{(rule, job): (start, end)} of every finished job from Snakemake's own records.
    Snakemake keeps one record per output file; a job's files share its job_hash (their
    start times can differ by a few ms: the earliest and the latest count)."""
    jobs: dict = {}
    for f in (work / ".snakemake" / "metadata").iterdir():
        rec = json.loads(f.read_text())
        if rec.get("starttime") and rec.get("endtime"):
            key = (rec["rule"], rec.get("job_hash", rec["starttime"]))
            start, end = jobs.get(key, (rec["starttime"], rec["endtime"]))
            jobs[key] = (min(start, rec["starttime"]), max(end, rec["endtime"]))
    return jobs


def job_times(work: Path) -> dict[str, dict]:
    """Per rule: jobs and summed seconds (start to end of each job, job_records)."""
    out: dict[str, list[float]] = defaultdict(list)
    for (rule, _), (start, end) in job_records(work).items():
        out[rule].append(end - start)
    return {r: {"jobs": len(xs), "seconds": round(sum(xs), 1)} for r, xs in sorted(out.items())}


# What a probe job of a multiclass task imports: torch, pandas (heareval's fold means), the
# native probe, and heareval's scores with their optional libraries deferred (hearflow.probe.scores;
# before it, heareval.score pulled in scikit-learn, scipy.stats, sed_eval and dcase_util: "plain").
PROBE_IMPORTS = {
    "deferred": "import torch, pandas, hearflow.probe.job, hearflow.probe.native; "
    "from hearflow.probe.scores import heareval_score; heareval_score()",
    "plain": "import torch, sklearn.metrics, heareval.score, hearflow.probe.job, hearflow.probe.native",
}


def probe_imports(work: Path) -> str:
    """The probe job's imports at the commit checked out in `work` (before the layout by phase,
    the probe job's module was hearflow.probe_job)."""
    code = PROBE_IMPORTS["deferred" if (work / "src" / "hearflow" / "probe" / "scores.py").is_file() else "plain"]
    if not (work / "src" / "hearflow" / "probe" / "job.py").is_file():
        code = code.replace("hearflow.probe.job", "hearflow.probe_job")
    return code


def start_cost(work: Path, repeats: int = 5, code: str | None = None) -> float:
    """Seconds for a fresh interpreter to import what a probe job imports (probe_imports),
    the median of `repeats`."""
    code = code or probe_imports(work)
    env = dict(os.environ, PYTHONPATH=str(work / "src"))
    times = []
    for _ in range(repeats):
        t0 = time.monotonic()
        subprocess.run([sys.executable, "-c", code], check=True, env=env)
        times.append(time.monotonic() - t0)
    return round(sorted(times)[len(times) // 2], 2)


def compare(work: Path) -> list[dict]:
    sys.path.insert(0, str(work / "src"))
    from hearflow.data import archives as data
    from hearflow.workflow import plan
    from hearflow.workflow.config import load_params

    p = plan.make(load_params(work / "params.yaml"), "hear2021-sim", work)
    rows = []
    for row in p["tasks"]:
        t = row["task"]
        expect = {"archive": (f"data/archives/{data.archive_name(t)}", row["archive_gb"])}
        expect["extracted"] = (f"data/tasks/48000/{t}", row["extracted_gb"])
        expect |= {f"resampled {r}": (f"data/tasks/{r}/{t}", gb) for r, gb in row["resampled_gb"].items()}
        expect |= {f"member {m}": (f"results/members/{m}/{t}", gb) for m, gb in row["member_gb"].items()}
        expect |= {f"config {c}": (f"results/configs/{c}/{t}", gb) for c, gb in row["config_gb"].items()}
        for kind, (rel, gb) in expect.items():
            got = _size(work / rel)
            rows.append({"task": t, "what": kind, "planned": round(gb * 1e9), "written": got, "ratio": gb * 1e9 / got})
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cores", type=int, default=2)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="sim-bench-") as tmp:
        work = Path(tmp) / "repo"
        subprocess.run(["git", "clone", "-q", str(ROOT), str(work)], check=True)
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=work, capture_output=True, text=True)
        env = dict(os.environ, PYTHONPATH=str(work / "src"))
        cmd = [sys.executable, "-m", "snakemake", "--cores", str(args.cores), "--config", "suite=hear2021-sim"]
        t0 = time.monotonic()
        res = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True)
        wall = time.monotonic() - t0
        if res.returncode != 0:
            sys.exit(f"the rehearsal failed after {wall:.0f} s:\n{res.stdout[-5000:]}\n{res.stderr[-5000:]}")
        rules = job_times(work)
        start = start_cost(work)
        sizes = compare(work)
    jobs = sum(r["jobs"] for r in rules.values())
    job_s = sum(r["seconds"] for r in rules.values())
    worst = sorted(sizes, key=lambda r: -abs(r["ratio"] - 1))
    result = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}",
        "commit": head.stdout.strip(),
        "command": " ".join(["snakemake", "--cores", str(args.cores), "--config", "suite=hear2021-sim"]),
        "wall_s": round(wall, 1),
        "target_s": TARGET_S,
        "met": wall <= TARGET_S,
        "jobs": jobs,
        "job_seconds": round(job_s, 1),
        "probe_job_start_s": start,
        "rules": rules,
        "sizes_checked": len(sizes),
        "sizes_within_10pct": sum(abs(r["ratio"] - 1) <= 0.10 for r in sizes),
        "worst_sizes": worst[:10],
    }
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "sim_rehearsal.json").write_text(json.dumps(result, indent=1) + "\n")
    probe_jobs = sum(rules.get(r, {}).get("jobs", 0) for r in ("probe", "probe_wide"))  # narrow or wide
    lines = [
        "# hear2021-sim rehearsal",
        "",
        f"`python benchmarks/sim_rehearsal.py --cores {args.cores}` at {result['commit']} on {result['machine']}: "
        f"`{result['command']}` from scratch in a fresh clone.",
        "",
        f"Wall time **{wall:.0f} s** ({wall / 60:.1f} min; target {TARGET_S} s: "
        f"**{'met' if result['met'] else 'not met'}**). {jobs} jobs, {job_s:.0f} s of job time in all "
        f"(Snakemake's records), {job_s / max(wall, 1):.2f} jobs' worth running on average.",
        "",
        f"A job's start alone, a fresh interpreter importing what a probe job imports: {start} s "
        f"(median of 5); x {probe_jobs} probe jobs = {start * probe_jobs:.0f} s.",
        "",
        "| rule | jobs | job time (s) | mean (s) |",
        "|---|---:|---:|---:|",
    ]
    for rule, r in sorted(rules.items(), key=lambda kv: -kv[1]["seconds"]):
        lines.append(f"| {rule} | {r['jobs']} | {r['seconds']:.0f} | {r['seconds'] / r['jobs']:.1f} |")
    lines += [
        "",
        f"Planner vs run: {result['sizes_within_10pct']} of {len(sizes)} sizes within 10% "
        "(every archive, extracted and resampled folder, member and config view of every task). Worst:",
        "",
        "| task | what | planned (bytes) | written (bytes) | ratio |",
        "|---|---|---:|---:|---:|",
    ]
    for r in worst[:10]:
        lines.append(f"| {r['task']} | {r['what']} | {r['planned']:,} | {r['written']:,} | {r['ratio']:.3f} |")
    (OUT / "sim_rehearsal.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
