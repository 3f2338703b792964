"""Build one `recordings` task from the installed Debian packages and pack it under its archive name."""

from pathlib import Path

from hearflow.core.smk import run
from hearflow.data.recordings import build_archive


def main(smk):
    build_archive(smk.wildcards.task, Path(smk.output[0]))


run(snakemake, main)  # noqa: F821 (injected by Snakemake)
