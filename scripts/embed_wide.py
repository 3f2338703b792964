"""Embed every task of the suite with one model in one job (rule embed_wide): one start and
one model load; each task's finished batches are kept until the job is done, so a restarted
job recomputes only what it had not finished."""

from pathlib import Path

from hearflow.core.smk import run, set_threads
from hearflow.embed.job import embed_tasks, job_settings


def main(smk):
    set_threads(smk.threads)
    embed_tasks([(Path(t), Path(o)) for t, o in zip(smk.input.tasks, smk.output, strict=True)], **job_settings(smk))


run(snakemake, main)  # noqa: F821
