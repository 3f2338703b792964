"""Where and how long a job ran, for the provenance records every phase writes beside its
results (embedding `provenance.json`, probe scores). Standard library only, so that a module
of any phase can import it without depending on another phase's code."""

from __future__ import annotations

import os
import platform
import socket
import time


def run_environment(start: float) -> dict:
    """Wall time since `start` (time.time()), host, Python version and Slurm job id: facts
    about the run, kept out of result hashes."""
    return {
        "wall_seconds": round(time.time() - start, 3),
        "host": socket.gethostname(),
        "python": platform.python_version(),
        "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
    }
