"""Unpack one task archive safely and check its HEAR layout at the archive's rate."""

from pathlib import Path

from hearflow.core.smk import run
from hearflow.data.archives import extract_task


def main(smk):
    extract_task(
        Path(smk.input[0]),
        Path(smk.output[0]),
        smk.wildcards.task,
        rate=int(smk.wildcards.arate),
        max_clips_per_split=smk.params.max_clips_per_split,
        seed=smk.params.seed,
    )


run(snakemake, main)  # noqa: F821
