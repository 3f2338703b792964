"""Fault injection into whole runs of the small demo (tests/test_dvc.py SMALL: two configs on a
scene and an event task, every phase), issue 35. Each test states the fault, where it is
injected and what must hold after; every run ends with the uninterrupted run's results
(conftest `small_demo_built`), byte for byte.

- head process killed: SIGKILL to the whole process group of `dvc repro`, and of
  `snakemake --cores 2`, once a job of each phase runs (data, embed, probe, report); then the
  same command again (plain Snakemake first refuses with its own LockException and needs
  `snakemake --unlock`, as docs/reliability.md says);
- one job killed: SIGKILL to a running embed job and to a running probe job of a plain
  Snakemake run: the run fails that job, the rerun completes;
- two runs at once: a second `dvc repro` and a `snakemake` in the workspace of a running
  `dvc repro`, and a `dvc repro` beside a running `snakemake`: each refuses, the first goes on;
- disk full while an embedding is written (a full tmpfs under results/): the job stops
  naming the disk and the output, leaves nothing that looks finished, and the rerun after
  space is freed completes;
- damaged DVC cache files: tests/test_dvcrun.py::test_a_cache_file_damaged_silently_is_never_handed_to_a_job.
The Slurm fault (scancel of a running job, resubmitted by `retries`) is in tests/test_slurm.py.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hearflow.workflow import locks
from hearflow.workflow.outcheck import built_at
from tests.test_dvc import BIN, _dvc, _env, _make_repo, _run

pytestmark = pytest.mark.e2e

SNAKEMAKE = [sys.executable, "-m", "snakemake", "--cores", "2"]
# Where each phase writes (a job of the phase runs while Snakemake marks one of these incomplete)
PHASES = {"data": "data/", "embed": "results/members/", "probe": "results/probe", "report": "reports/"}
RESULTS = ("reports/metrics.json", "reports/metrics_ci.json")
DEADLINE_S = 900


def _incomplete(repo: Path, since: float = 0.0) -> list[str]:
    """Outputs of the jobs Snakemake runs now, or that a killed run left incomplete (its
    .snakemake/incomplete markers); with `since`, only markers written since then (Snakemake
    writes a job's marker when the job starts: a killed run's stale markers are older)."""
    folder = repo / ".snakemake" / "incomplete"
    out = []
    for marker in folder.glob("*") if folder.is_dir() else []:
        try:
            if since and marker.stat().st_mtime < since:
                continue
            out.append(base64.urlsafe_b64decode(marker.name).decode())
        except (ValueError, OSError):
            continue
    return out


def _outputs(repo: Path) -> dict[str, int]:
    """Every job output Snakemake recorded as finished (its record in .snakemake/metadata,
    hearflow.workflow.outcheck.built_at) and no incomplete marker names, with its mtime: the
    files and folders under data/tasks, results/ and reports/. (Not mtimes alone: the
    Snakefile settles the committed reports' mtimes when Snakemake has no records yet.)"""
    running = set(_incomplete(repo))
    found = {}
    for pattern in (
        "data/tasks/*/*",
        "results/members/*/*",
        "results/configs/*/*",
        "results/probe*/*/*/*",
        "reports/**/*",
    ):
        for p in repo.glob(pattern):
            rel = p.relative_to(repo).as_posix()
            if p.name.startswith(".") or any(rel == r or rel.startswith(r.rstrip("/") + "/") for r in running):
                continue
            if built_at(repo, rel) is not None:
                found[rel] = p.stat().st_mtime_ns
    return found


def _job_pids(repo: Path, script: str) -> list[int]:
    """Processes of running jobs of a `script:` rule (Snakemake runs .snakemake/scripts/tmp*.<script>)."""
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmd = (proc / "cmdline").read_bytes().split(b"\0")
            cwd = os.readlink(proc / "cwd")
        except OSError:
            continue
        if cwd == str(repo) and any(a.endswith(f".{script}".encode()) and b".snakemake/scripts/" in a for a in cmd):
            pids.append(int(proc.name))
    return pids


class Head:
    """A head process (`dvc repro` or `snakemake`) in its own process group, logged to a file."""

    def __init__(self, repo: Path, cmd: list[str], log: Path):
        self.repo, self.log, self.start = repo, log, time.time() - 0.05
        with log.open("w") as f:
            self.proc = subprocess.Popen(
                cmd, cwd=repo, env=_env(repo), stdout=f, stderr=subprocess.STDOUT, start_new_session=True
            )

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for(self, what: str, ready) -> None:
        """Poll `ready()` until true; fail if the run ends first."""
        deadline = time.monotonic() + DEADLINE_S
        while not ready():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the run ended (or timed out) before {what}:\n{self.text()[-4000:]}")
            time.sleep(0.05)

    def wait_for_phase(self, phase: str) -> None:
        self.wait_for(
            f"a {phase} job ran",
            lambda: any(o.startswith(PHASES[phase]) for o in _incomplete(self.repo, since=self.start)),
        )

    def kill_group(self) -> None:
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def finish(self) -> int:
        return self.proc.wait(timeout=DEADLINE_S)


def _equal_to_uninterrupted(repo: Path, built: Path) -> None:
    for path in RESULTS:
        assert (repo / path).read_bytes() == (built / path).read_bytes(), path
    for table in (built / "reports" / "tables").glob("*.md"):
        assert (repo / "reports" / "tables" / table.name).read_bytes() == table.read_bytes(), table.name


def record(rows: list[dict]) -> None:
    """Append what a fault test saw (one row per fault injected) to $HEARFLOW_FAULT_RECORDS,
    when set: benchmarks/faults.py builds docs/reliability.md's table from these rows. A test
    records only once every assertion about its faults has held."""
    path = os.environ.get("HEARFLOW_FAULT_RECORDS")
    if path:
        with open(path, "a") as f:
            for row in rows:
                f.write(json.dumps(row, sort_keys=True) + "\n")


def _kill_rows(fault: str, kills: list, repo: Path) -> list[dict]:
    """One record row per kill, once the run completed: where, the jobs in flight then (run
    again), the finished outputs kept, results identical (checked before recording)."""
    return [
        {"fault": fault, "where": where, "in_flight": n, "kept": _kept(before, repo), "identical": True}
        for where, n, before in kills
    ]


def _kept(before: dict[str, int], repo: Path) -> int:
    """Outputs finished before a fault are not built again: same mtime after the rerun.
    Returns how many there were."""
    after = _outputs(repo)
    rebuilt = sorted(o for o, t in before.items() if after.get(o) != t)
    assert not rebuilt, f"finished before the fault but built again: {rebuilt}"
    return len(before)


def test_dvc_repro_killed_in_each_phase_completes_when_run_again(small_demo_built, tmp_path):
    """SIGKILL to the process group of `dvc repro` (an OOM killer, a preempted head job,
    `kill -9`) once a job of the data, embed, probe and report phase runs, each time followed by
    `dvc repro` again: every rerun gets past the dead run's locks with no manual step (DVC
    removes its own; hearflow.workflow.locks the Snakemake one), keeps what was finished and
    ends with the uninterrupted run's results. While the first run works, a second `dvc repro`
    and a plain `snakemake` in the same workspace refuse, and the first goes on unharmed."""
    built, _ = small_demo_built
    repo = _make_repo(tmp_path / "repo")
    dvc = [str(BIN / "dvc"), "repro"]
    kills = []
    for i, phase in enumerate(PHASES):
        head = Head(repo, dvc, tmp_path / f"run{i}.log")
        head.wait_for_phase(phase)
        if phase == "embed":  # two runs at once, while embeddings (the longest jobs) are computed
            second = _dvc(repo, "repro", check=False)
            said = second.stdout + second.stderr  # DVC's rwlock ("is busy, it is being blocked by") or repo lock
            assert second.returncode != 0 and ("is being blocked by" in said or "Unable to acquire lock" in said), said
            plain = _run(repo, *SNAKEMAKE, check=False)
            assert plain.returncode != 0 and "LockException" in plain.stdout + plain.stderr, plain.stderr[-2000:]
            assert head.proc.poll() is None, "the first run died beside the refused ones"
            head.wait_for_phase(phase)
        head.kill_group()
        assert locks.lock_files(repo), f"{phase}: the fault is real: the killed run's Snakemake lock stays"
        kills.append((phase, len(_incomplete(repo)), _outputs(repo)))
        if i > 0:
            assert "holds a lock of a Snakemake run that is no longer alive" in head.text(), head.text()[-3000:]
    final = Head(repo, dvc, tmp_path / "final.log")
    assert final.finish() == 0, final.text()[-5000:]
    assert "holds a lock of a Snakemake run that is no longer alive" in final.text()
    rows = _kill_rows("`dvc repro` killed (SIGKILL to its process group)", kills, repo)
    _equal_to_uninterrupted(repo, built)
    assert not locks.lock_files(repo) and "Data and pipelines are up to date" in _dvc(repo, "status").stdout
    concurrent = [
        "a second `dvc repro` beside a running `dvc repro`",
        "`snakemake` beside a running `dvc repro`",
    ]
    record(rows + [{"fault": f, "where": "embed", "refused": True, "identical": True} for f in concurrent])
    print(json.dumps(rows))


def test_snakemake_survives_kills_of_its_head_and_of_single_jobs(small_demo_built, tmp_path):
    """Plain `snakemake --cores 2`:
    - its process group SIGKILLed in each phase: the same command then refuses with
      Snakemake's own LockException (plain Snakemake keeps its behaviour), and after
      `snakemake --unlock` completes, keeping what was finished;
    - one embed job, then one probe job, SIGKILLed while the head lives: the run fails that
      job (no retries in the local profile) and the same command completes;
    - a `dvc repro` started beside the running Snakemake refuses (hearflow.workflow.locks sees
      the live Snakemake and leaves its lock), and the Snakemake run goes on unharmed.
    The results equal the uninterrupted run's."""
    built, _ = small_demo_built
    repo = _make_repo(tmp_path / "repo")
    kills = []
    steps = [
        ("head", "data"),
        ("head", "embed"),
        ("job", "embed.py"),
        ("job", "probe_wide.py"),
        ("head", "probe"),
        ("head", "report"),
    ]
    locked = False
    for i, (what, where) in enumerate(steps):
        if locked:  # Snakemake's own behaviour after a kill, and the documented fix
            refused = _run(repo, *SNAKEMAKE, check=False)
            assert refused.returncode != 0 and "LockException" in refused.stdout + refused.stderr
            _run(repo, *SNAKEMAKE, "--unlock")
        head = Head(repo, SNAKEMAKE, tmp_path / f"run{i}.log")
        if (what, where) == ("head", "embed"):  # a dvc repro beside a live snakemake
            head.wait_for_phase("embed")
            beside = _dvc(repo, "repro", check=False)
            out = beside.stdout + beside.stderr
            assert beside.returncode != 0 and "a Snakemake run is working in" in out and "LockException" in out, out[
                -3000:
            ]
            assert head.proc.poll() is None, "the Snakemake run died beside the refused dvc repro"
        if what == "head":
            head.wait_for_phase(where)
            head.kill_group()
            assert locks.lock_files(repo)
            locked = True
        else:
            head.wait_for(f"a job running {where}", lambda w=where: _job_pids(repo, w))
            for pid in _job_pids(repo, where)[:1]:
                os.kill(pid, signal.SIGKILL)
            assert head.finish() != 0, head.text()[-3000:]
            assert "Error in rule" in head.text()
            assert not locks.lock_files(repo)  # the head ended by itself and unlocked
            locked = False
        kills.append((where, len(_incomplete(repo)), _outputs(repo)))
    if locked:
        _run(repo, *SNAKEMAKE, "--unlock")
    final = Head(repo, SNAKEMAKE, tmp_path / "final.log")
    assert final.finish() == 0, final.text()[-5000:]
    heads = [k for k, (what, _) in zip(kills, steps) if what == "head"]
    jobs = [
        (w.removesuffix(".py").replace("_wide", ""), n, b)
        for (w, n, b), (what, _) in zip(kills, steps)
        if what == "job"
    ]
    rows = _kill_rows("`snakemake --cores 2` killed (SIGKILL to its process group)", heads, repo)
    rows += _kill_rows("one job killed (SIGKILL), the head alive", jobs, repo)
    _equal_to_uninterrupted(repo, built)
    assert "Nothing to be done" in _run(repo, *SNAKEMAKE, "-n").stdout
    record(
        rows
        + [{"fault": "`dvc repro` beside a running `snakemake`", "where": "embed", "refused": True, "identical": True}]
    )
    print(json.dumps(rows))


# --- disk full --------------------------------------------------------------------------------


def _mount_tmpfs(where: Path, size: str) -> None:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        if os.environ.get("CI"):
            pytest.fail("the disk-full test mounts a tmpfs: it needs root (CI runs as root)")
        pytest.skip("the disk-full test mounts a tmpfs: it needs root")
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], capture_output=True)
    if res.returncode != 0:
        if os.environ.get("CI"):
            pytest.fail(f"mount -t tmpfs failed: {res.stderr.decode()}")
        pytest.skip(f"mount -t tmpfs failed: {res.stderr.decode()}")


def _fill(folder: Path, leave: int = 16384) -> Path:
    """Fill the filesystem of `folder` with one ballast file, but `leave` bytes: the job gets
    to create its folders and start writing, and runs out of room in the middle."""
    ballast = folder / "ballast"
    fd = os.open(ballast, os.O_WRONLY | os.O_CREAT)
    try:
        for size in (1 << 16, 1):
            try:
                while True:
                    os.write(fd, b"\0" * size)
            except OSError:
                pass
        os.ftruncate(fd, max(0, os.fstat(fd).st_size - leave))
    finally:
        os.close(fd)
    return ballast


@pytest.mark.parametrize(
    "rule, folder",
    [("embed", "results/members/crepe_tiny"), ("ensemble", "results/configs/avg_xc")],
    ids=["embed", "ensemble"],
)
def test_a_full_disk_stops_the_job_with_a_message_and_the_rerun_completes(small_demo_built, tmp_path, rule, folder):
    """`folder` on a tmpfs that fills up while the job writes demo_tones' output (an embedding:
    shards, then the output; an ensemble: the output folder under a temporary name): the job
    stops with "disk full", naming the output and the free space there; nothing that looks
    finished is left (no output, no temporary sibling); once space is freed the same command
    completes with the uninterrupted run's bytes, and the other task's output is untouched."""
    built, _ = small_demo_built
    repo = tmp_path / "repo"
    shutil.copytree(built, repo, symlinks=True)  # copy2: mtimes kept, nothing else is out of date
    mount = repo / folder
    target = f"{folder}/demo_tones-v1-full"
    saved = tmp_path / "saved"
    shutil.move(mount, saved)
    mount.mkdir()
    _mount_tmpfs(mount, "16m")
    try:
        for p in saved.iterdir():  # the other task's output, kept as it was
            if p.name != "demo_tones-v1-full":
                shutil.copytree(p, mount / p.name, symlinks=True) if p.is_dir() else shutil.copy2(p, mount)
        others = {p.name: p.stat().st_mtime_ns for p in mount.iterdir()}
        ballast = _fill(mount)
        full = _run(repo, *SNAKEMAKE, target, check=False)
        out = full.stdout + full.stderr
        assert full.returncode != 0
        assert f"hearflow: disk full: rule {rule} could not write its outputs: {target} (" in out, out[-4000:]
        assert "[ENOSPC: No space left on device" in out and "run the same command again" in out
        left = sorted(p.name for p in mount.iterdir())
        assert "demo_tones-v1-full" not in left and not [n for n in left if n.endswith(".tmp")], left
        ballast.unlink()  # space freed
        again = _run(repo, *SNAKEMAKE, target)
        assert "disk full" not in again.stdout + again.stderr
        for f in sorted((saved / "demo_tones-v1-full").rglob("*")):
            if f.is_file():
                rel = f.relative_to(saved)
                assert (mount / rel).read_bytes() == f.read_bytes(), rel
        assert {n: (mount / n).stat().st_mtime_ns for n in others} == others
        record(
            [
                {
                    "fault": "disk full while an output is written",
                    "where": rule,
                    "in_flight": 1,
                    "kept": len(others),
                    "identical": True,
                }
            ]
        )
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)
