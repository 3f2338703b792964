"""Probe every per-layer scene embedding of one model on one task (layer-wise curve)."""

from pathlib import Path

from hearflow.core.smk import run, set_threads
from hearflow.probe.job import layer_settings, run_layer_probe


def main(smk):
    set_threads(smk.threads)
    run_layer_probe(Path(smk.input[0]), Path(smk.output[0]), **layer_settings(smk.params, smk.threads))


run(snakemake, main)  # noqa: F821
