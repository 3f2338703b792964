"""Fetch one task archive, verified against the committed checksum lock (a mirror folder with
`serve`: over HTTP from a server on 127.0.0.1 that this job runs, hearflow.data.mirror)."""

import contextlib
import logging
import os
from pathlib import Path

from hearflow.core.smk import run
from hearflow.data.archives import ChecksumLock, archive_name, fetch
from hearflow.data.mirror import serve


def main(smk):
    with serve(Path(smk.params.serve)) if smk.params.serve else contextlib.nullcontext() as base:
        url = f"{base}/{archive_name(smk.wildcards.task, smk.wildcards.arate)}" if base else smk.params.url
        logging.getLogger("hearflow").info("fetching %s", url)
        fetch(
            url,
            Path(smk.output[0]),
            lock=ChecksumLock(Path(smk.params.lock)),
            lock_key=smk.params.lock_key,
            expected_md5=smk.params.md5,
            # attempts after a dropped connection, each resuming where the last stopped (docs/suites.md)
            retries=int(os.environ.get("HEARFLOW_DOWNLOAD_RETRIES", 5)),
        )


run(snakemake, main)  # noqa: F821
