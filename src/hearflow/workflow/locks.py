"""A Snakemake lock left by a dead run: recognised, and removed only when no Snakemake works here.

Snakemake locks a working directory for the files of its run (`.snakemake/locks/N.input.lock`,
`N.output.lock`: file lists, no process id) and removes the locks when it ends. A run killed
with SIGKILL (an OOM killer, a preempted head job, `kill -9` of `dvc repro`'s process group)
leaves them behind, and the next Snakemake on overlapping files stops with a LockException
until someone types `snakemake --unlock`. `dvc repro` runs Snakemake through
hearflow.workflow.dvcrun, which calls `recover` first:

    recover(Path.cwd())   # True: a dead run's lock was removed; False: none, or not ours to remove

A lock is stale when no process whose command is Snakemake (`snakemake ...`, `python -m
snakemake ...`, a Slurm jobstep's `snakemake` included) has this directory as its working
directory (Linux /proc). DVC holds its own repo lock for the whole `dvc repro`, so no second
`dvc repro` can start Snakemake here meanwhile; a plain `snakemake` started by hand is seen
as a live process, and its lock is left alone (it then stops the new run, as Snakemake would).
Without /proc nothing can be told apart, and the lock is left alone with a message saying so.
The dead run's half-written outputs are Snakemake's "incomplete" files, rebuilt by the next
run (`rerun-incomplete: true` in profiles/default and profiles/slurm); finished ones are kept.
Plain `snakemake` is untouched: it keeps its own LockException and `--unlock`.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

LOCK_DIR = Path(".snakemake") / "locks"
PROC = Path("/proc")


def lock_files(root: Path) -> list[Path]:
    return sorted((root / LOCK_DIR).glob("*.lock")) if (root / LOCK_DIR).is_dir() else []


def _is_snakemake(argv: list[str]) -> bool:
    """`snakemake ...`, `<python> /path/bin/snakemake ...` or `<python> -m snakemake ...`."""
    return any(Path(word).name == "snakemake" for word in argv[:2]) or argv[1:3] == ["-m", "snakemake"]


def live_snakemakes(root: Path) -> list[int] | None:
    """Pids of running Snakemake processes working in `root`; None where /proc cannot tell."""
    proc = PROC
    if not (proc / "self" / "cmdline").is_file():
        return None
    here, found = root.resolve(), []
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")[:-1]
            if _is_snakemake(argv) and (entry / "cwd").resolve() == here:
                found.append(int(entry.name))
        except OSError:  # gone meanwhile, or another user's process
            continue
    return sorted(found)


def recover(root: Path, unlock: list[str] | None = None) -> bool:
    """Remove a dead run's Snakemake lock in `root` with `snakemake --unlock` (or `unlock`, a
    command run in `root`); True when it did. Prints why it did or did not."""
    locks = lock_files(root)
    if not locks:
        return False
    live = live_snakemakes(root)
    where = root / LOCK_DIR
    if live is None:
        print(
            f"hearflow.workflow.dvcrun: {where} holds a Snakemake lock, and without /proc this machine cannot "
            "tell whether its run is alive; if no Snakemake runs in this directory, run `snakemake --unlock`",
            flush=True,
        )
        return False
    if live:
        print(
            f"hearflow.workflow.dvcrun: a Snakemake run is working in {root} (pid {', '.join(map(str, live))}); "
            "its lock is left alone: wait for it to finish, or stop it",
            flush=True,
        )
        return False
    cmd = unlock or [sys.executable, "-m", "snakemake", "--unlock"]
    print(
        f"hearflow.workflow.dvcrun: {where} holds a lock of a Snakemake run that is no longer alive "
        f"({len(locks)} lock file(s), no Snakemake process in {root}); removing it with {' '.join(cmd[-2:])}. "
        "Outputs that run left incomplete are rebuilt, finished ones kept.",
        flush=True,
    )
    done = subprocess.run(cmd, cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if done.returncode != 0:  # Snakemake's own error follows when the run starts
        print(f"hearflow.workflow.dvcrun: the unlock failed: {done.stderr.strip()[-500:]}", flush=True)
        return False
    return True
