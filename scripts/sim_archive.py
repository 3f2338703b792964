"""Synthesise one hear2021-sim task in its real task's shape and pack it under its real archive name."""

from pathlib import Path

from hearflow.core.smk import run
from hearflow.data.catalog import load_catalog
from hearflow.data.sim import build_archive, task_shape


def main(smk):
    task, p = smk.wildcards.task, smk.params
    shape = task_shape(
        task, load_catalog(smk.input.catalog)[task], scale=p.scale, min_clips=p.min_clips, max_seconds=p.max_seconds
    )
    build_archive(task, Path(smk.output[0]), shape=shape, seed=p.seed)


run(snakemake, main)  # noqa: F821 (injected by Snakemake)
