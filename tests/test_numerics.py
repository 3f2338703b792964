"""Reproducible numerics (hearflow.core.numerics): the same bytes whatever kernels the CPU would
pick and whatever thread and worker counts a job gets; different bytes in `fast` mode.

Another CPU is simulated the only way one machine can: by pushing each library to another
instruction-set level through its own variable (ATEN_CPU_CAPABILITY=default for PyTorch's
kernels, MKL_CBWR=COMPATIBLE for MKL, ONEDNN_MAX_CPU_ISA=SSE41 for oneDNN). An AVX-512
machine's natural choice differs from this machine's in the same way; reproducible mode has
to override either. benchmarks/numerics.py measures every variable on its own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.numerics import digest, scores_digest
from hearflow.core import numerics

ROOT = Path(__file__).resolve().parents[1]
# ... and spinning idle OpenMP threads (GNU OpenMP's default; jobs sleep theirs)
OTHER_CPU = {
    "ATEN_CPU_CAPABILITY": "default",
    "MKL_CBWR": "COMPATIBLE",
    "ONEDNN_MAX_CPU_ISA": "SSE41",
    "OMP_WAIT_POLICY": "ACTIVE",
}
PROBE_GRID = {"hidden_dim": [256], "max_epochs": [10], "patience": [4]}  # the demo's width; 10 of its 30 epochs


# ------------------------------------------------------------------------------ units


def test_reproducible_mode_pins_every_library_and_fast_mode_none():
    env = numerics.environment({"mode": "reproducible", "threads": 3})
    if numerics.is_x86_64():
        assert env["ATEN_CPU_CAPABILITY"] == "avx2" and env["MKL_CBWR"] == "AVX2,STRICT"
        assert env["ONEDNN_MAX_CPU_ISA"] == "AVX2" and env["OPENBLAS_CORETYPE"] == "Haswell"
    assert env["HEARFLOW_NUMERICS"] == "reproducible:3"  # threads are pinned in the job, not here
    assert "OMP_NUM_THREADS" not in env  # Snakemake sets it to each job's threads
    assert numerics.job_threads(8, env) == 3 and numerics.job_threads(8, {"HEARFLOW_NUMERICS": "fast"}) == 8
    assert numerics.environment({"mode": "fast", "threads": 3}) == {"HEARFLOW_NUMERICS": "fast"}
    assert numerics.settings(None) == {"mode": "reproducible", "threads": 2}
    with pytest.raises(ValueError, match="numerics.mode"):
        numerics.settings({"mode": "exact"})
    with pytest.raises(ValueError, match="numerics.threads"):
        numerics.settings({"mode": "fast", "threads": 0})


def test_apply_overrides_the_callers_choice_and_jobs_check_it():
    params = {"mode": "reproducible", "threads": 2}
    env = {"ATEN_CPU_CAPABILITY": "avx512", "OMP_NUM_THREADS": "16", "HOME": "/root"}
    numerics.apply(params, env)
    assert env["HOME"] == "/root" and env["OMP_NUM_THREADS"] == "16"  # the job's own (Snakemake's)
    numerics.check_environment(params, env)
    assert numerics.job_settings(env) == params
    if numerics.is_x86_64():
        assert env["ATEN_CPU_CAPABILITY"] == "avx2"
        started_elsewhere = dict(env, ATEN_CPU_CAPABILITY="avx512")
        with pytest.raises(numerics.NumericsError, match="ATEN_CPU_CAPABILITY='avx512'"):
            numerics.check_environment(params, started_elsewhere)
    numerics.check_environment({"mode": "fast", "threads": 2}, {"HEARFLOW_NUMERICS": "fast"})
    assert numerics.job_settings({}) == {"mode": "fast", "threads": 2}  # no Snakefile: fast


def test_the_record_holds_no_machine_fact():
    rec = numerics.record({"mode": "reproducible", "threads": 2})
    assert set(rec) == {"mode", "threads", "pins"}
    assert "HEARFLOW_NUMERICS" not in rec["pins"]


def test_the_snakefile_puts_the_pins_into_every_jobs_environment():
    """rules/common.smk applies `numerics` of the params and hands the variables to jobs
    (`envvars:`, which Snakemake passes to Slurm jobs)."""
    text = (ROOT / "rules" / "common.smk").read_text()
    assert "NUMERICS_ENV = numerics.apply(NUMERICS)" in text
    assert "*sorted(NUMERICS_ENV)" in text
    # idle OpenMP threads sleep (scheduling only: run_case's other CPU spins them, same bytes)
    assert 'os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")' in text


# ------------------------------------------------------------------------------ outputs


def _child(spec: dict) -> dict:
    """One job in its own process: embed the task with a stand-in HuBERT and log-mel, probe
    the fixed log-mel embeddings; digests of every output byte."""
    from hearflow.embed.job import embed_task
    from hearflow.probe import probe_task

    numerics.check_environment(spec["numerics"])  # what hearflow.core.smk.run does in every job
    numerics.limit_threads()
    numerics.configure_torch(spec["threads"])
    digests = {}
    for name, rate, module, options in (
        ("hubert", 16000, "ssl", {"checkpoint": spec["hubert"], "stand_in": True}),
        ("logmel", 32000, "logmel", {"sample_rate": 32000, "n_mels": 64, "hop_ms": 10}),
    ):
        out = Path(spec["out"]) / name
        embed_task(
            Path(spec["tasks"]) / str(rate) / "demo_events-v1-full", out, module=module, options=options, progress=False
        )
        digests[name] = digest(out)
    scores = probe_task(
        Path(spec["fixed"]) / "last",
        grid=PROBE_GRID,
        max_grid_points=2,
        seed=3,
        device="cpu",
        workers=spec.get("workers"),
    )
    digests["probe"] = scores_digest(scores)
    return digests


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, standins):
    """demo_events at a fifth of its size at 16 and 32 kHz, and log-mel embeddings of it at
    half its size that every probe reads (made once, here: a smaller probe rounds
    differently on another CPU too, but its event scores absorb the difference)."""
    from hearflow.data.demo import synthesize_task
    from hearflow.data.resample import resample_task
    from hearflow.embed.job import embed_task

    root = tmp_path_factory.mktemp("numerics")
    src = synthesize_task("demo_events-v1-full", root / "synth", seed=0, scale=0.2)
    for rate in (16000, 32000):
        resample_task(src, root / "tasks" / str(rate) / src.name, sr_in=48000, sr_out=rate)
    half = synthesize_task("demo_events-v1-full", root / "half", seed=0, scale=0.5)
    resample_task(half, root / "half32" / half.name, sr_in=48000, sr_out=32000)
    embed_task(
        root / "half32" / half.name,
        root / "fixed",
        module="logmel",
        options={"sample_rate": 32000, "n_mels": 128, "hop_ms": 10},
        progress=False,
    )
    return {"root": root, "hubert": str(standins["hubert"]), "cache": {}}


def run_case(ws: dict, mode: str, push: dict | None = None, threads: int = 2, workers: int | None = None) -> dict:
    key = (mode, json.dumps(push, sort_keys=True), threads, workers)
    if key not in ws["cache"]:
        params = {"mode": mode, "threads": 2}
        env = {k: v for k, v in os.environ.items() if k not in numerics.VARIABLES}
        env["OMP_WAIT_POLICY"] = "PASSIVE"  # what the Snakefile gives every job (rules/common.smk)
        env.update(push or {})  # what this CPU (or another) would choose
        numerics.apply(params, env)  # what the Snakefile does for every job
        env.update({k: str(threads) for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")})
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT / "src"), str(ROOT), env.get("PYTHONPATH")) if p)
        out = ws["root"] / f"case{len(ws['cache'])}"
        spec = {
            "numerics": params,
            "threads": threads,
            "workers": workers,
            "out": str(out),
            "tasks": str(ws["root"] / "tasks"),
            "fixed": str(ws["root"] / "fixed"),
            "hubert": ws["hubert"],
        }
        code = "import json,sys; from tests.test_numerics import _child; print(json.dumps(_child(json.loads(sys.argv[1]))))"
        proc = subprocess.run(
            [sys.executable, "-c", code, json.dumps(spec)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        ws["cache"][key] = json.loads(proc.stdout.strip().splitlines()[-1])
    return ws["cache"][key]


def differing(a: dict, b: dict) -> list[str]:
    return sorted(k for k in a if a[k] != b[k])


@pytest.mark.skipif(not numerics.is_x86_64(), reason="the pins are x86-64 instruction sets")
def test_another_cpus_kernels_move_outputs_in_fast_mode_and_not_in_reproducible_mode(workspace):
    fast_here, fast_other = run_case(workspace, "fast"), run_case(workspace, "fast", OTHER_CPU)
    # Which outputs move depends on the CPU: on the AMD EPYCs of earlier runs all three did; on
    # an Intel Xeon (AVX-512) the probe's training lands on the same scores. At least one must
    # move, or the push would show nothing about the pins.
    moved = differing(fast_here, fast_other)
    assert moved and set(moved) <= {"hubert", "logmel", "probe"}, moved
    repro_here = run_case(workspace, "reproducible")
    repro_other = run_case(workspace, "reproducible", OTHER_CPU)
    assert differing(repro_here, repro_other) == []


def test_outputs_do_not_depend_on_the_jobs_threads_or_workers_in_reproducible_mode(workspace):
    base = run_case(workspace, "reproducible", threads=2)
    assert differing(base, run_case(workspace, "reproducible", threads=1)) == []
    assert differing(base, run_case(workspace, "reproducible", threads=2, workers=1)) == []
    # with the mode off, the job's thread count reaches the kernels and moves the outputs
    fast = run_case(workspace, "fast", threads=2)
    assert differing(fast, run_case(workspace, "fast", threads=1)) != []


def test_a_job_started_without_the_pins_stops_before_computing(tmp_path, monkeypatch):
    """hearflow.core.smk.run, the entry of every script job, checks the environment first."""
    from types import SimpleNamespace

    from hearflow.core.smk import run

    for key in numerics.VARIABLES + ("HEARFLOW_NUMERICS",):
        monkeypatch.delenv(key, raising=False)
    ran = []
    job = SimpleNamespace(
        rule="probe",
        wildcards={},
        threads=1,
        log=[str(tmp_path / "job.log")],
        resources={},
        config={"numerics": {"mode": "reproducible", "threads": 2}},
    )
    with pytest.raises(numerics.NumericsError, match="HEARFLOW_NUMERICS=None"):
        run(job, lambda smk: ran.append(1))
    assert ran == []
    for key, value in numerics.environment(job.config["numerics"]).items():  # what the Snakefile sets
        monkeypatch.setenv(key, value)
    run(job, lambda smk: ran.append(1))
    assert ran == [1]
