"""Merge every scores.json into reports/metrics.json (means) and reports/metrics_ci.json (intervals)."""

from pathlib import Path

from hearflow.core.smk import run
from hearflow.report.intervals import write_intervals
from hearflow.report.metrics import write_metrics


def main(smk):
    write_metrics([Path(p) for p in smk.input], Path(smk.output[0]))
    write_intervals([Path(p) for p in smk.input], Path(smk.output[1]))


run(snakemake, main)  # noqa: F821
