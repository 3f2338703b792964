"""Fetch one task archive, verified against the committed checksum lock."""

from pathlib import Path

from hearflow.data import ChecksumLock, fetch
from hearflow.smk import run


def main(smk):
    fetch(
        smk.params.url,
        Path(smk.output[0]),
        lock=ChecksumLock(Path(smk.params.lock)),
        lock_key=smk.params.lock_key,
        expected_md5=smk.params.md5,
    )


run(snakemake, main)  # noqa: F821
