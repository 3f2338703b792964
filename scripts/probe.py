"""Probe one configuration on one task with the chosen engine (HEAR protocol or linear)."""

from pathlib import Path

from hearflow.core.smk import run, set_threads
from hearflow.probe.job import engine_settings, run_probe


def main(smk):
    set_threads(smk.threads)
    run_probe(
        Path(smk.input[0]),
        Path(smk.output[0]),
        **engine_settings(smk.params, smk.threads),
        log=Path(smk.log[0]).with_suffix(".heareval.log"),
    )


run(snakemake, main)  # noqa: F821
