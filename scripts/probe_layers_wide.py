"""Probe every per-layer scene embedding of one model on every scene task in one job (rule
probe_layers_wide), each task's scores kept in results/cache/probe_layers so that a rerun
computes only what changed."""

from pathlib import Path

from hearflow.core.smk import run, set_threads
from hearflow.probe.job import LAYER_PROBE_CACHE, layer_settings, run_layer_probes


def main(smk):
    set_threads(smk.threads)
    run_layer_probes(
        [(Path(i), Path(o)) for i, o in zip(smk.input, smk.output, strict=True)],
        cache=Path(LAYER_PROBE_CACHE),
        **layer_settings(smk.params, smk.threads),
    )


run(snakemake, main)  # noqa: F821
