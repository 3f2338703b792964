"""Probe every per-layer scene embedding of one model on one task (layer-wise curve)."""

from pathlib import Path

from hearflow.core.smk import run, set_threads
from hearflow.probe.job import run_layer_probe


def main(smk):
    set_threads(smk.threads)
    run_layer_probe(
        Path(smk.input[0]),
        Path(smk.output[0]),
        engine=smk.params.engine,
        seed=smk.params.seed,
        linear=dict(smk.params.linear),
        # grid settings are None unless the layer engine is native (rules/probe.smk)
        grid=dict(smk.params.grid) if smk.params.grid else None,
        max_grid_points=smk.params.max_grid_points or 8,
        device=smk.params.device,
        workers=smk.threads,
    )


run(snakemake, main)  # noqa: F821
