"""Probe one configuration on every task of the suite in one job (rule probe_wide), each
task's scores kept in results/cache/probe so that a rerun computes only what changed."""

from pathlib import Path

from hearflow.core.smk import run, set_threads
from hearflow.probe.job import PROBE_CACHE, engine_settings, run_probes


def main(smk):
    set_threads(smk.threads)
    run_probes(
        [(Path(i), Path(o)) for i, o in zip(smk.input, smk.output, strict=True)],
        cache=Path(PROBE_CACHE),
        **engine_settings(smk.params, smk.threads),
        log_dir=Path(smk.log[0]).with_suffix(""),  # logs/probe/<cfg>/<task>.heareval.log
    )


run(snakemake, main)  # noqa: F821
