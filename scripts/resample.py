"""Resample one task's 48 kHz audio to the rate a model needs."""

from pathlib import Path

from hearflow.core.smk import run
from hearflow.data.archives import ARCHIVE_RATE
from hearflow.data.resample import resample_task


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
