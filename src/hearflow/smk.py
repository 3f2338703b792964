"""Glue for `script:` adapters: route a job's logging and progress bars to its log file."""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Callable
from typing import Any


def run(snakemake: Any, job: Callable[[Any], None]) -> None:
    """Call `job(snakemake)` with logging and stderr (tqdm bars) going to `snakemake.log[0]`."""
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
        try:
            job(snakemake)
        except Exception:
            logging.getLogger("hearflow").exception("job failed")
            raise


def set_threads(n: int) -> None:
    """Let torch use exactly the cores Snakemake gave this job."""
    import torch

    torch.set_num_threads(max(1, int(n)))
