"""Merge every scores.json into reports/metrics.json."""

from pathlib import Path

from hearflow.report import write_metrics
from hearflow.smk import run


def main(smk):
    write_metrics([Path(p) for p in smk.input], Path(smk.output[0]))


run(snakemake, main)  # noqa: F821
