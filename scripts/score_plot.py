"""Write the plot data of `dvc plots`: each task's first metric per configuration."""

from pathlib import Path

from hearflow.core.smk import run
from hearflow.report.metrics import write_score_plot


def main(smk):
    write_score_plot([Path(p) for p in smk.input], Path(smk.output[0]))


run(snakemake, main)  # noqa: F821
