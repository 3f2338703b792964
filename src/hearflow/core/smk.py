"""Glue for `script:` adapters: route a job's logging and progress bars to its log file,
and record where each job ran (host, Slurm job id) there."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import sys
import time
from collections.abc import Callable
from typing import Any

from hearflow.core import numerics

RECORD_PREFIX = "hearflow-job "


def job_record(snakemake: Any) -> dict:
    """Where and as what a job runs: rule, wildcards, host, Slurm job/step ids, resources.

    Goes to the job's log only (logs/ is no DVC output), never into results, so outputs stay
    byte-identical whichever executor ran them."""
    resources = {k: v for k, v in dict(snakemake.resources).items() if not k.startswith("_")}
    return {
        "rule": snakemake.rule,
        "wildcards": dict(snakemake.wildcards),
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
        "slurm_step_id": os.environ.get("SLURM_STEP_ID"),
        "threads": snakemake.threads,
        "resources": {k: v for k, v in resources.items() if isinstance(v, (int, float, str))},
    }


def read_records(log_path: str | os.PathLike) -> list[dict]:
    """The job records a log holds (one per attempt that started), oldest first."""
    with open(log_path) as f:
        return [json.loads(line[len(RECORD_PREFIX) :]) for line in f if line.startswith(RECORD_PREFIX)]


def run(snakemake: Any, job: Callable[[Any], None]) -> None:
    """Call `job(snakemake)` with logging and stderr (tqdm bars) going to `snakemake.log[0]`,
    after writing the job's record (`job_record`) as one line starting with RECORD_PREFIX."""
    log_path = snakemake.log[0] if len(snakemake.log) else None
    with contextlib.ExitStack() as stack:
        if log_path:
            stream = stack.enter_context(open(log_path, "a", buffering=1))
            stack.enter_context(contextlib.redirect_stderr(stream))
            handler = logging.StreamHandler(stream)
        else:
            handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)
        record = dict(job_record(snakemake), started=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
        (stream if log_path else sys.stderr).write(RECORD_PREFIX + json.dumps(record, sort_keys=True) + "\n")
        log = logging.getLogger("hearflow")
        start = time.time()
        try:
            config = getattr(snakemake, "config", None) or {}
            if "numerics" in config:  # every job of the Snakefile (the params schema requires it)
                numerics.check_environment(config["numerics"])
                numerics.limit_threads()  # Snakemake set OMP_NUM_THREADS & co. to the job's threads
            log.info("numerics %s on %s", json.dumps(numerics.job_settings()), json.dumps(numerics.machine()))
            job(snakemake)
        except Exception:
            log.exception("job failed")
            raise
        log.info("job done in %.3f s", time.time() - start)


def set_threads(n: int) -> dict:
    """Pin torch for this job (hearflow.core.numerics.configure_torch): `numerics.threads`
    intra-op threads and deterministic algorithms in reproducible mode, else exactly the
    cores Snakemake gave the job. Returns the numerics record for provenance."""
    return numerics.configure_torch(n)
