"""Provenance of a job: what its results record of how they were computed (the numerics
settings; see hearflow.core.numerics), and where and how long it ran, which goes to the job's log
only: a result must hash the same on every machine (issue 18), so no host, wall time or
Python patch level goes into embedding `provenance.json` or probe `scores.json`. Standard
library only, so that a module of any phase can import it without depending on another
phase's code."""

from __future__ import annotations

import json
import logging
import os
import platform
import socket
import sys
import time

from hearflow.core import numerics


def result_provenance() -> dict:
    """What a result records of its computation: {"numerics": mode, threads, pins}. The
    same on every machine for the same settings."""
    torch = sys.modules.get("torch")
    threads = torch.get_num_threads() if torch is not None else None
    return {"numerics": numerics.record(numerics.job_settings(), threads)}


RUN_PREFIX = "run record "


def log_run(what: str, start: float, **facts) -> dict:
    """Log where and how long a job ran (run_environment) with `facts` (e.g. shards reused)
    to the job's log, as `<what>: run record {json}` (read_run_records); returns the record."""
    record = {"what": what, **run_environment(start), **facts}
    logging.getLogger("hearflow").info("%s: %s%s", what, RUN_PREFIX, json.dumps(record, sort_keys=True))
    return record


def read_run_records(text: str) -> list[dict]:
    """The records log_run wrote into a log's text, oldest first."""
    return [json.loads(line.split(RUN_PREFIX, 1)[1]) for line in text.splitlines() if RUN_PREFIX in line]


def run_environment(start: float) -> dict:
    """Wall time since `start` (time.time()), host, Python version and Slurm job id: facts
    about the run, for its log; never in a result."""
    return {
        "wall_seconds": round(time.time() - start, 3),
        "host": socket.gethostname(),
        "python": platform.python_version(),
        "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
    }
