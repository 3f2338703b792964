"""Probe seeds: what the demo's extra probe seeds and clip resamples cost, against one seed.

    python benchmarks/probe_seeds.py [--workspace DIR]   # reports/benchmarks/probe_seeds.{json,md}

Runs every probe job of the demo (each configuration x task, as Snakemake runs them: one
process per job, `--cores 2`) twice in one run, in the same workspace, on the same config
embeddings: once as a one-seed probe without resamples (the probe before issue 22:
`probe.seeds` [42], `probe.bootstrap` 0) and once with the demo's settings (params.yaml:
`suites.demo.overrides.probe.seeds`, `probe.bootstrap`). The ratio of the two wall times, and
of the summed job times (Snakemake's records), per task, goes to
reports/benchmarks/probe_seeds.{json,md}. Target (issue 22): at most 1.5x.

Without --workspace, a fresh clone of HEAD is built up to the config embeddings first
(`snakemake --cores 2 ensemble_all`, not timed). The machine should be otherwise idle.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "reports" / "benchmarks"
sys.path.insert(0, str(ROOT / "src"))

from hearflow.workflow.config import load_params, make_plan  # noqa: E402
from hearflow.workflow.keys import setting  # noqa: E402
from hearflow.workflow.targets import scores_file  # noqa: E402


def _env(work: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "SNAKEMAKE_PROFILE"}
    env["PYTHONPATH"] = str(work / "src")
    return env


def _snakemake(work: Path, *args: str) -> None:
    cmd = [sys.executable, "-m", "snakemake", "--cores", "2", *args]
    res = subprocess.run(cmd, cwd=work, env=_env(work), capture_output=True, text=True)
    if res.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{(res.stdout + res.stderr)[-4000:]}")


def job_seconds(work: Path, targets: list[str]) -> dict[str, float]:
    """{target: end minus start} of each target's last job, from Snakemake's records."""
    out = {}
    for target in targets:
        name = base64.urlsafe_b64encode(target.encode()).decode()
        record = json.loads((work / ".snakemake" / "metadata" / name).read_text())
        out[target] = record["endtime"] - record["starttime"]
    return out


def run_mode(work: Path, name: str, overrides: dict, targets: list[str]) -> dict:
    config = work / f".probe-seeds-{name}.yaml"
    config.write_text(yaml.safe_dump({"suites": {"demo": {"overrides": {"probe": overrides}}}}))
    start = time.perf_counter()
    _snakemake(work, "--configfile", str(config), "--allowed-rules", "probe", "--forcerun", "probe", "--", *targets)
    wall = time.perf_counter() - start
    jobs = job_seconds(work, targets)
    by_task: dict[str, float] = {}
    for target, seconds in jobs.items():
        task = Path(target).parent.name
        by_task[task] = by_task.get(task, 0.0) + seconds
    print(f"probe_seeds: {name}: {wall:.1f} s wall, {sum(jobs.values()):.1f} s of jobs", flush=True)
    return {"mode": name, "probe": overrides, "wall_s": round(wall, 1), "job_s": round(sum(jobs.values()), 1),
            "job_s_by_task": {t: round(s, 1) for t, s in by_task.items()}}  # fmt: skip


def report(rows: list[dict], machine: str) -> str:
    one, many = rows
    lines = [
        "# Probe seeds: the demo's seeds and clip resamples against one seed",
        "",
        f"`python benchmarks/probe_seeds.py`; {machine}. Every demo probe job (configuration x task),",
        "`snakemake --cores 2 --allowed-rules probe --forcerun probe`, both modes in one run on the same",
        "config embeddings; job time = Snakemake's end minus start per job (process start-up included).",
        "",
        "| mode | probe settings | wall s | job s |",
        "|---|---|---:|---:|",
    ]
    for r in rows:
        lines.append(f"| {r['mode']} | `{json.dumps(r['probe'])}` | {r['wall_s']} | {r['job_s']} |")
    lines += ["", "| task | one seed, job s | demo seeds, job s | ratio |", "|---|---:|---:|---:|"]
    for task, seconds in one["job_s_by_task"].items():
        other = many["job_s_by_task"][task]
        lines.append(f"| {task} | {seconds} | {other} | {other / seconds:.2f} |")
    lines += [
        "",
        f"- wall time ratio: {many['wall_s'] / one['wall_s']:.2f} (target <= 1.5)",
        f"- job time ratio: {many['job_s'] / one['job_s']:.2f}",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workspace", type=Path, help="a demo workspace with its config embeddings built")
    args = parser.parse_args(argv)
    params = load_params(ROOT / "params.yaml")
    plan = make_plan(params)
    targets = [scores_file(cfg, task) for cfg in plan.configs for task in plan.tasks]
    demo = {"seeds": setting(params, "probe.seeds"), "bootstrap": setting(params, "probe.bootstrap")}
    with tempfile.TemporaryDirectory(prefix="hearflow-probe-seeds-") as tmp:
        work = args.workspace
        if work is None:
            work = Path(tmp) / "work"
            subprocess.run(["git", "clone", "-q", str(ROOT), str(work)], check=True)
            print("probe_seeds: building the config embeddings (not timed)", flush=True)
            _snakemake(work, "ensemble_all")
        rows = [
            run_mode(work, "one seed", {"seeds": [demo["seeds"][0]], "bootstrap": 0}, targets),
            run_mode(work, "demo seeds", demo, targets),
        ]
    machine = f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}"
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "probe_seeds.json").write_text(json.dumps({"machine": machine, "rows": rows}, indent=1) + "\n")
    (OUT / "probe_seeds.md").write_text(report(rows, machine))
    print(report(rows, machine))
    return 0


if __name__ == "__main__":
    sys.exit(main())
