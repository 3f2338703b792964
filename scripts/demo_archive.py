"""Synthesize one demo task and pack it like a public HEAR archive."""

from pathlib import Path

from hearflow.core.smk import run
from hearflow.data.demo import build_archive


def main(smk):
    build_archive(smk.wildcards.task, Path(smk.output[0]), seed=smk.params.seed, scale=smk.params.scale)


run(snakemake, main)  # noqa: F821 (injected by Snakemake)
