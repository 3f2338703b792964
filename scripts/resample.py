"""Resample one task's 48 kHz audio to the rate a model needs."""

from pathlib import Path

from hearflow.audio import resample_task
from hearflow.data import ARCHIVE_RATE
from hearflow.smk import run


def main(smk):
    resample_task(
        Path(smk.input[0]),
        Path(smk.output[0]),
        sr_in=ARCHIVE_RATE,
        sr_out=int(smk.wildcards.rate),
        workers=smk.threads,
        max_clips_per_split=smk.params.max_clips_per_split,
        seed=smk.params.seed,
    )


run(snakemake, main)  # noqa: F821
