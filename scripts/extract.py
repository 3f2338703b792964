"""Unpack one task archive safely and check its HEAR layout."""
from pathlib import Path

from hearflow.data import extract_task
from hearflow.smk import run


def main(smk):
    extract_task(Path(smk.input[0]), Path(smk.output[0]), smk.wildcards.task)


run(snakemake, main)  # noqa: F821
