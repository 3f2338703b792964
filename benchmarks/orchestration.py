"""Orchestration: `snakemake` vs `dvc repro` of the demo from scratch, locally and on Slurm.

    python benchmarks/orchestration.py [--cases NAME ...]   # reports/benchmarks/orchestration.{json,md}

Every case runs the whole demo from scratch in its own fresh clone of HEAD (the same clean
workspace each time), one case after the other in this one run:

- `snakemake --cores 2` and `dvc repro` (the README main job), locally; then, in the
  Snakemake case's workspace, `dvc repro` once more: it must run no Snakemake job (it only
  records what Snakemake built);
- on the one-node Slurm cluster of `.ci/slurm_local.sh` (started if it is not running; needs
  root): `snakemake --profile slurm --profile profiles/ci-slurm` and
  `SNAKEMAKE_PROFILE='[slurm, profiles/ci-slurm]' dvc repro`, with the number of Slurm jobs
  submitted and the peak number running at once (squeue polled every 0.5 s).

Wall times, the `dvc repro` / `snakemake` ratios, and whether every case wrote the same
`reports/metrics.json` (byte for byte) go to reports/benchmarks/orchestration.{json,md}.
The machine should be otherwise idle: the cases run one after another, so load that comes
and goes during the run biases the ratios.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "reports" / "benchmarks"
BIN = Path(sys.executable).parent
SLURM_LOCAL = ROOT / ".ci" / "slurm_local.sh"
CI_PROFILES = "[slurm, profiles/ci-slurm]"
CASES = {
    "local snakemake": ([sys.executable, "-m", "snakemake", "--cores", "2"], {}),
    "local dvc repro": ([str(BIN / "dvc"), "repro"], {}),
    "slurm snakemake": (
        [sys.executable, "-m", "snakemake", "--profile", "slurm", "--profile", "profiles/ci-slurm"],
        {},
    ),
    "slurm dvc repro": ([str(BIN / "dvc"), "repro"], {"SNAKEMAKE_PROFILE": CI_PROFILES}),
}


def _env(work: Path, extra: dict) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("SNAKEMAKE_PROFILE", "HEARFLOW_NUMERICS")}
    env.update(PYTHONPATH=str(work / "src"), PATH=f"{BIN}{os.pathsep}{env['PATH']}", **extra)
    return env


class SlurmWatch:
    """Polls squeue: the peak number of jobs running at once, and every job id seen."""

    def __init__(self):
        self.peak, self.seen, self._stop = 0, set(), threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self):
        while not self._stop.is_set():
            res = subprocess.run(["squeue", "--noheader", "--format=%i|%T"], capture_output=True, text=True)
            rows = [line.split("|") for line in res.stdout.splitlines() if "|" in line]
            self.seen |= {job for job, _ in rows}
            self.peak = max(self.peak, sum(state == "RUNNING" for _, state in rows))
            self._stop.wait(0.5)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def run_case(name: str, tmp: Path) -> dict:
    cmd, extra = CASES[name]
    work = tmp / name.replace(" ", "-")
    subprocess.run(["git", "clone", "-q", str(ROOT), str(work)], check=True)
    log_path = tmp / f"{work.name}.log"
    print(f"orchestration: {name}: {' '.join(cmd)} (log {log_path})", flush=True)
    with open(log_path, "w") as log:
        start = time.perf_counter()
        if name.startswith("slurm"):
            with SlurmWatch() as watch:
                rc = subprocess.call(cmd, cwd=work, env=_env(work, extra), stdout=log, stderr=subprocess.STDOUT)
        else:
            watch, rc = (
                None,
                subprocess.call(cmd, cwd=work, env=_env(work, extra), stdout=log, stderr=subprocess.STDOUT),
            )
        wall = time.perf_counter() - start
    text = log_path.read_text()
    if rc:
        raise RuntimeError(f"{name} failed ({rc}): see {log_path}\n{text[-3000:]}")
    row = {
        "case": name,
        "command": " ".join(([f"SNAKEMAKE_PROFILE='{extra['SNAKEMAKE_PROFILE']}'"] if extra else []) + cmd),
        "wall_s": round(wall, 1),
        "snakemake_jobs": len(re.findall(r"^(?:local)?rule \w+:$", text, flags=re.M)),
        "snakemake_calls": max(1, text.count("hearflow.workflow.dvcrun: one Snakemake run")),
        "dvc_stages_run": len(re.findall(r"^Running stage '", text, flags=re.M)),
        "metrics_sha256": hashlib.sha256((work / "reports" / "metrics.json").read_bytes()).hexdigest(),
    }
    if watch is not None:
        row.update(slurm_jobs=len(watch.seen), peak_running=watch.peak)
    if "dvc" in name:
        status = subprocess.run(
            [str(BIN / "dvc"), "status"], cwd=work, env=_env(work, {}), capture_output=True, text=True
        )
        row["dvc_status_clean"] = "Data and pipelines are up to date." in status.stdout
    if name == "local snakemake":  # then the user's `dvc repro`: records, runs no job
        start = time.perf_counter()
        res = subprocess.run([str(BIN / "dvc"), "repro"], cwd=work, env=_env(work, {}), capture_output=True, text=True)
        after = res.stdout + res.stderr
        if res.returncode:
            raise RuntimeError(f"dvc repro after snakemake failed: {after[-3000:]}")
        row["then_dvc_repro"] = {
            "wall_s": round(time.perf_counter() - start, 1),
            "dvc_stages_run": len(re.findall(r"^Running stage '", after, flags=re.M)),
            "snakemake_jobs": len(re.findall(r"^(?:local)?rule \w+:$", after, flags=re.M)),
        }
    shutil.rmtree(work)
    return row


def _slurm_up() -> bool | None:
    """Start the local cluster when it is not running; None if Slurm cannot run here."""
    if not shutil.which("sbatch") and os.geteuid() != 0:
        return None
    if subprocess.run([str(SLURM_LOCAL), "status"], capture_output=True).returncode == 0:
        return False
    started = subprocess.run([str(SLURM_LOCAL), "start"], capture_output=True, text=True)
    if started.returncode:
        print(f"orchestration: no Slurm cluster: {started.stderr.strip()[-500:]}", file=sys.stderr)
        return None
    return True


def report(rows: list[dict], machine: str) -> str:
    by = {r["case"]: r for r in rows}
    lines = [
        "# Orchestration: `snakemake` vs `dvc repro`, demo from scratch",
        "",
        f"`python benchmarks/orchestration.py`; {machine}. Each case in a fresh clone of HEAD,",
        "one after the other in one run; Slurm: the one-node cluster of `.ci/slurm_local.sh`",
        "(`profiles/ci-slurm` stacked: no GPU, no accounting).",
        "",
        "| case | command | wall s | Snakemake calls | jobs | DVC stages run | Slurm jobs | peak running |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['case']} | `{r['command'].replace(sys.executable, 'python').replace(str(BIN) + '/', '')}` "
            f"| {r['wall_s']} | {r['snakemake_calls']} | {r['snakemake_jobs']} | {r['dvc_stages_run']} "
            f"| {r.get('slurm_jobs', '')} | {r.get('peak_running', '')} |"
        )
    lines.append("")
    for where in ("local", "slurm"):
        s, d = by.get(f"{where} snakemake"), by.get(f"{where} dvc repro")
        if s and d:
            lines.append(
                f"- {where}: `dvc repro` / `snakemake` wall time = {d['wall_s'] / s['wall_s']:.2f} (target <= 1.25)"
            )
            if where == "slurm":
                lines.append(
                    f"- slurm: peak running jobs, `dvc repro` {d['peak_running']} vs `snakemake` {s['peak_running']}"
                )
    then = by.get("local snakemake", {}).get("then_dvc_repro")
    if then:
        lines.append(
            f"- `dvc repro` right after `snakemake --cores 2` in the same workspace: {then['wall_s']} s, "
            f"{then['dvc_stages_run']} stages recorded, {then['snakemake_jobs']} Snakemake jobs"
        )
    digests = {r["metrics_sha256"] for r in rows}
    lines.append(f"- `reports/metrics.json` identical across the cases: {'yes' if len(digests) == 1 else 'NO'}")
    clean = [r["case"] for r in rows if "dvc_status_clean" in r]
    if clean:
        ok = all(by[c]["dvc_status_clean"] for c in clean)
        lines.append(f"- `dvc status` clean after each `dvc repro`: {'yes' if ok else 'NO'}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", choices=list(CASES), default=list(CASES))
    args = parser.parse_args(argv)
    cases = list(args.cases)
    started = None
    if any(c.startswith("slurm") for c in cases):
        started = _slurm_up()
        if started is None:
            cases = [c for c in cases if not c.startswith("slurm")]
    rows = []
    try:
        with tempfile.TemporaryDirectory(prefix="hearflow-orchestration-") as tmp:
            for case in cases:
                rows.append(run_case(case, Path(tmp)))
                print(json.dumps(rows[-1]), flush=True)
    finally:
        if started:
            subprocess.run([str(SLURM_LOCAL), "stop"], capture_output=True)
    machine = f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}"
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "orchestration.json").write_text(json.dumps({"machine": machine, "rows": rows}, indent=1) + "\n")
    (OUT / "orchestration.md").write_text(report(rows, machine))
    print(report(rows, machine))
    return 0


if __name__ == "__main__":
    sys.exit(main())
