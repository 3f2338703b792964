"""Glue for `script:` adapters: route a job's logging and progress bars to its log file,
and record where each job ran (host, Slurm job id) there."""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import shutil
import socket
import sys
import time
from collections.abc import Callable
from typing import Any

from hearflow.core import numerics

RECORD_PREFIX = "hearflow-job "
# A write that failed for want of room: disk full, quota exceeded, file-size limit.
DISK_FULL = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


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


def _free_bytes(path: str | os.PathLike) -> int | None:
    """Free bytes on the filesystem that holds `path` (its nearest existing folder)."""
    path = os.path.abspath(path)
    while not os.path.exists(path) and os.path.dirname(path) != path:
        path = os.path.dirname(path)
    try:
        return shutil.disk_usage(path).free
    except OSError:
        return None


def disk_full_message(rule: str, outputs: list[str], err: OSError) -> str:
    """What a job says when a write fails for want of room: which rule, which outputs and the
    free space where each lives, and what to do. Its outputs were written under temporary
    names (hearflow.core.io.atomic_path), so nothing that looks finished is left."""
    where = ", ".join(f"{o} ({free} bytes free there)" for o in outputs for free in [_free_bytes(o)]) or "?"
    return (
        f"disk full: rule {rule} could not write its outputs: {where}"
        f" [{errno.errorcode.get(err.errno, err.errno)}: {err.strerror}"
        + (f": {err.filename}" if err.filename else "")
        + "]. Nothing half-written is kept (outputs are renamed into place only when complete);"
        " free space on that filesystem (or move results/ to a larger one) and run the same command again."
    )


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
        except OSError as err:
            if err.errno not in DISK_FULL:
                log.exception("job failed")
                raise
            message = disk_full_message(snakemake.rule, [str(o) for o in snakemake.output], err)
            log.error("%s", message, exc_info=True)
            # printed on the job's own stderr once the log redirection has ended; exit status 1
            raise SystemExit(f"hearflow: {message}") from err
        except Exception:
            log.exception("job failed")
            raise
        log.info("job done in %.3f s", time.time() - start)


def set_threads(n: int) -> dict:
    """Pin torch for this job (hearflow.core.numerics.configure_torch): `numerics.threads`
    intra-op threads and deterministic algorithms in reproducible mode, else exactly the
    cores Snakemake gave the job. Returns the numerics record for provenance."""
    return numerics.configure_torch(n)
