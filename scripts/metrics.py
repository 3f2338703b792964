"""Merge every scores.json into reports/metrics.json (means) and reports/metrics_ci.json (intervals)."""

from pathlib import Path

from hearflow.intervals import write_intervals
from hearflow.report import write_metrics
from hearflow.smk import run


def main(smk):
    write_metrics([Path(p) for p in smk.input], Path(smk.output[0]))
    write_intervals([Path(p) for p in smk.input], Path(smk.output[1]))


run(snakemake, main)  # noqa: F821
