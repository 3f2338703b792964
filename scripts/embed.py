"""Embed one task with one model: one forward pass per clip, every view written."""

from pathlib import Path

from hearflow.core.smk import run, set_threads
from hearflow.embed.job import embed_task, job_settings


def main(smk):
    set_threads(smk.threads)
    embed_task(Path(smk.input.task), Path(smk.output[0]), **job_settings(smk))


run(snakemake, main)  # noqa: F821
