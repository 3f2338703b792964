"""Where a job's time goes, per rule, before and after a change: one README main job (`dvc
repro` of the demo, from scratch) per commit, in a fresh clone each, one after the other.

    python benchmarks/job_overhead.py --revs 5c0d0b4 HEAD     # reports/benchmarks/job_overhead.{json,md}

Per commit:
- wall time of `dvc repro`, the span of its Snakemake jobs (first job start to last job end,
  .snakemake/metadata) and the rest, DVC's own share (stage hashing, lock writing, checkout);
- per rule: jobs, job time (Snakemake's start-to-end records) and the part of it inside the
  job's function (`hearflow.core.smk.run` logs "job done in X s": the work, with any import made
  inside it and, for embed jobs, the model's loading); the difference is the fixed start: a
  fresh interpreter, Snakemake's script preamble, the adapter's top-level imports, exit;
- embed jobs' model module import and loading, where the job log records them ("module
  imported in X s, model loaded in Y s"; not logged before this benchmark existed);
- a probe job's start as the sim rehearsal measures it (benchmarks/sim_rehearsal.py
  `start_cost`: a fresh interpreter importing what a probe job of a multiclass task imports
  at that commit), median of 5;
- Snakemake's own planning of the hear2021-sim DAG (`snakemake -n --forceall`, 851 jobs).
Jobs run with `--cores 2`-like parallelism, so job times are measured under the load of the
other job; the machine should be otherwise idle.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from sim_rehearsal import job_records, probe_imports, start_cost

from hearflow.core.smk import read_records

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "reports" / "benchmarks"
BIN = Path(sys.executable).parent
DONE = re.compile(r"hearflow: job done in ([0-9.]+) s")
LOADED = re.compile(r"module imported in ([0-9.]+) s, model loaded in ([0-9.]+) s")


def _env(work: Path) -> dict:
    env = dict(os.environ, PYTHONPATH=str(work / "src"), PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}")
    env.pop("SNAKEMAKE_PROFILE", None)
    return env


def _logs(work: Path) -> dict[str, dict[str, list[float]]]:
    """Per rule (its job record in the log, hearflow.core.smk; else the logs/<rule>/ folder): each
    job's work seconds and model-loading seconds."""
    out: dict[str, dict[str, list[float]]] = defaultdict(lambda: {"work": [], "load": []})
    for log in (work / "logs").rglob("*.log"):
        text = log.read_text(errors="replace")
        records = read_records(log)
        rule = records[-1]["rule"] if records else log.relative_to(work / "logs").parts[0]
        done = DONE.findall(text)
        if done:
            out[rule]["work"].append(float(done[-1]))
        loaded = LOADED.findall(text)
        if loaded:
            out[rule]["load"].append(sum(map(float, loaded[-1])))
    return out


def measure(rev: str, tmp: Path) -> dict:
    work = tmp / rev.replace("/", "_")
    subprocess.run(["git", "clone", "-q", str(ROOT), str(work)], check=True)
    subprocess.run(["git", "checkout", "-q", rev], cwd=work, check=True)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=work, capture_output=True, text=True).stdout
    env = _env(work)
    t0 = time.monotonic()
    res = subprocess.run([str(BIN / "dvc"), "repro"], cwd=work, env=env, capture_output=True, text=True)
    wall = time.monotonic() - t0
    if res.returncode != 0:
        sys.exit(f"{rev}: dvc repro failed after {wall:.0f} s:\n{res.stdout[-4000:]}\n{res.stderr[-4000:]}")
    (work / "dvc_repro_wall.json").write_text(json.dumps({"commit": commit.strip(), "wall_s": wall}))  # --reanalyse
    return analyse(rev, work, commit, wall)


def analyse(rev: str, work: Path, commit: str, wall: float) -> dict:
    """The figures of one measured clone (its Snakemake records and logs), its `dvc repro`
    having taken `wall` seconds."""
    env = _env(work)
    jobs = job_records(work)
    span = max(e for _, e in jobs.values()) - min(s for s, _ in jobs.values())
    per_rule: dict[str, list[float]] = defaultdict(list)
    for (rule, _), (s, e) in jobs.items():
        per_rule[rule].append(e - s)
    logs = _logs(work)
    rules = {}
    for rule, times in sorted(per_rule.items(), key=lambda kv: -sum(kv[1])):
        work_s = logs.get(rule, {}).get("work", [])
        load_s = logs.get(rule, {}).get("load", [])
        rules[rule] = {
            "jobs": len(times),
            "job_s": round(sum(times), 1),
            "work_s": round(sum(work_s), 1) if len(work_s) == len(times) else None,
            "start_s": round(sum(times) - sum(work_s), 1) if len(work_s) == len(times) else None,
            "model_load_s": round(sum(load_s), 1) if load_s else None,
        }
    probe_code = probe_imports(work)
    probe_jobs = sum(rules.get(r, {}).get("jobs", 0) for r in ("probe", "probe_wide"))
    scores = len(list((work / "results" / "probe").glob("*/*/scores.json")))
    t1 = time.monotonic()
    subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--forceall", "--config", "suite=hear2021-sim", "--quiet"],
        cwd=work,
        env=env,
        check=True,
        capture_output=True,
    )
    plan_s = time.monotonic() - t1
    return {
        "rev": rev,
        "commit": commit.strip(),
        "dvc_repro_wall_s": round(wall, 1),
        "snakemake_span_s": round(span, 1),
        "dvc_share_s": round(wall - span, 1),
        "rules": rules,
        "probe_start_s": (start := start_cost(work, code=probe_code)),
        "probe_jobs": probe_jobs,
        # a probe job's start shared by the (config, task) probes it runs (wide jobs: every task)
        "probe_start_per_probe_s": round(start * probe_jobs / scores, 2) if scores else None,
        "probe_start_imports": probe_code,
        "sim_dry_run_s": round(plan_s, 1),
    }


def report(runs: list[dict], machine: str) -> str:
    lines = [
        "# Job overhead: where a job's time goes",
        "",
        f"`python benchmarks/job_overhead.py --revs {' '.join(r['rev'] for r in runs)}` on {machine}: the README "
        "main job (`dvc repro` of the demo) from scratch in a fresh clone of each commit, one after the other.",
        "",
        "| | " + " | ".join(f"{r['rev']} ({r['commit']})" for r in runs) + " |",
        "|---|" + "---:|" * len(runs),
        "| `dvc repro` wall (s) | " + " | ".join(str(r["dvc_repro_wall_s"]) for r in runs) + " |",
        "| Snakemake jobs' span (s) | " + " | ".join(str(r["snakemake_span_s"]) for r in runs) + " |",
        "| DVC's own share (s) | " + " | ".join(str(r["dvc_share_s"]) for r in runs) + " |",
        "| a probe job's start (s, fresh interpreter, median of 5) | "
        + " | ".join(str(r["probe_start_s"]) for r in runs)
        + " |",
        "| probe jobs (for the demo's 56 (config, task) probes) | "
        + " | ".join(str(r.get("probe_jobs", "n/a")) for r in runs)
        + " |",
        "| a probe job's start per (config, task) probed (s) | "
        + " | ".join(str(r.get("probe_start_per_probe_s", "n/a")) for r in runs)
        + " |",
        "| Snakemake planning the hear2021-sim DAG (`-n --forceall`, s) | "
        + " | ".join(str(r["sim_dry_run_s"]) for r in runs)
        + " |",
        "",
        "Per rule: jobs, job time (Snakemake's records), the work inside the job's function (job logs), "
        "the fixed start (the difference: interpreter, Snakemake's preamble, top-level imports, exit) "
        "and embed jobs' model loading (part of the work), in seconds summed over the rule's jobs.",
        "",
    ]
    for r in runs:
        lines += [
            f"### {r['rev']} ({r['commit']})",
            "",
            "| rule | jobs | job time | work | fixed start | start per job | model loading |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for rule, x in r["rules"].items():
            per = f"{x['start_s'] / x['jobs']:.2f}" if x["start_s"] is not None else "n/a"
            lines.append(
                f"| {rule} | {x['jobs']} | {x['job_s']} | {x['work_s'] if x['work_s'] is not None else 'n/a'} | "
                f"{x['start_s'] if x['start_s'] is not None else 'n/a'} | {per} | "
                f"{x['model_load_s'] if x['model_load_s'] is not None else 'n/a'} |"
            )
        lines += ["", f"Probe start imports: `{r['probe_start_imports']}`", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--revs", nargs="+", default=["HEAD"], help="commits to measure, in this order")
    ap.add_argument("--keep", type=Path, help="keep the clones (with their results) in this folder")
    ap.add_argument("--reanalyse", type=Path, help="recount the clones kept there (no new run)")
    args = ap.parse_args(argv)
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    if args.reanalyse:  # the clones --keep kept, with the walls measure() wrote beside them
        runs = []
        for rev in args.revs:
            work = args.reanalyse / rev.replace("/", "_")
            wall = json.loads((work / "dvc_repro_wall.json").read_text())
            runs.append(analyse(rev, work, wall["commit"], wall["wall_s"]))
    elif args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        runs = [measure(rev, args.keep) for rev in args.revs]
    else:
        with tempfile.TemporaryDirectory(prefix="job-overhead-") as tmp:
            runs = [measure(rev, Path(tmp)) for rev in args.revs]
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "job_overhead.json").write_text(json.dumps({"machine": machine, "runs": runs}, indent=1) + "\n")
    (OUT / "job_overhead.md").write_text(report(runs, machine))
    print((OUT / "job_overhead.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
