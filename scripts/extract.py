"""Unpack one task archive safely and check its HEAR layout at the archive's rate."""

from pathlib import Path

from hearflow.data import extract_task
from hearflow.smk import run


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
