"""A Snakemake lock left by a killed run (hearflow.workflow.locks): removed when no Snakemake
works in the directory, left alone while one does, and left alone where /proc cannot tell."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hearflow.workflow import locks

SNAKEFILE = """
rule all:
    output:
        "x.txt",
    shell:
        "sleep {config[wait]}; echo x > {output}"
"""
SNAKEMAKE = [sys.executable, "-m", "snakemake", "--cores", "1", "--rerun-incomplete", "--quiet"]


@pytest.fixture()
def stale(tmp_path) -> Path:
    """A workflow directory whose Snakemake run was SIGKILLed mid-job, with its process group,
    as an OOM killer or `kill -9` of dvc repro does: the run's lock files stay behind."""
    (tmp_path / "Snakefile").write_text(SNAKEFILE)
    run = subprocess.Popen([*SNAKEMAKE, "--config", "wait=60"], cwd=tmp_path, start_new_session=True)
    deadline = time.monotonic() + 60
    while not (tmp_path / ".snakemake" / "incomplete").is_dir() or not list(
        (tmp_path / ".snakemake" / "incomplete").iterdir()
    ):
        assert time.monotonic() < deadline and run.poll() is None, "the job never started"
        time.sleep(0.1)
    os.killpg(run.pid, signal.SIGKILL)
    run.wait()
    assert locks.lock_files(tmp_path), "a SIGKILLed run leaves its lock"
    return tmp_path


def test_snakemake_command_lines_are_recognised():
    assert locks._is_snakemake(["snakemake", "--cores", "2"])
    assert locks._is_snakemake(["/v/bin/python", "/v/bin/snakemake", "--profile", "slurm"])
    assert locks._is_snakemake(["/v/bin/python", "-m", "snakemake", "--rerun-triggers", "params"])
    assert not locks._is_snakemake(["/v/bin/python", "-m", "hearflow.workflow.dvcrun", "--rules", "probe"])
    assert not locks._is_snakemake(["/v/bin/python", "scripts/probe.py", "snakemake"])


def test_a_dead_runs_lock_is_removed_and_snakemake_runs_again(stale, capsys):
    run = [*SNAKEMAKE, "--config", "wait=0"]
    refused = subprocess.run(run, cwd=stale, capture_output=True, text=True)
    assert refused.returncode != 0 and "cannot be locked" in refused.stdout + refused.stderr  # Snakemake's own
    assert locks.recover(stale) is True
    assert "no longer alive" in capsys.readouterr().out
    assert locks.lock_files(stale) == []
    subprocess.run(run, cwd=stale, check=True, capture_output=True)
    assert (stale / "x.txt").read_text() == "x\n"
    assert locks.recover(stale) is False  # nothing left to recover


def test_a_live_snakemake_keeps_its_lock(stale, tmp_path_factory, capsys):
    """A process whose command is Snakemake, working in the directory: the lock stays."""
    bin_dir = tmp_path_factory.mktemp("bin")
    (bin_dir / "snakemake").write_text("import time\ntime.sleep(60)\n")
    live = subprocess.Popen([sys.executable, str(bin_dir / "snakemake"), "--cores", "2"], cwd=stale)
    try:
        deadline = time.monotonic() + 10
        while live.pid not in (locks.live_snakemakes(stale) or []) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert locks.live_snakemakes(stale) == [live.pid]
        held = locks.lock_files(stale)
        assert locks.recover(stale) is False
        assert f"(pid {live.pid})" in capsys.readouterr().out
        assert locks.lock_files(stale) == held
    finally:
        live.kill()
        live.wait()
    assert locks.live_snakemakes(stale) == []


def test_without_proc_the_lock_is_left_with_a_message(stale, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(locks, "PROC", tmp_path / "no-proc")
    held = locks.lock_files(stale)
    assert locks.live_snakemakes(stale) is None
    assert locks.recover(stale) is False
    assert "run `snakemake --unlock`" in capsys.readouterr().out and locks.lock_files(stale) == held
