"""Probe every per-layer scene embedding of one model on every scene task in one job (rule
probe_layers_wide), each task's scores kept in results/cache/probe_layers so that a rerun
computes only what changed."""

from pathlib import Path

from hearflow.core.smk import run, set_threads
from hearflow.probe.job import LAYER_PROBE_CACHE, run_layer_probes


def main(smk):
    set_threads(smk.threads)
    run_layer_probes(
        [(Path(i), Path(o)) for i, o in zip(smk.input, smk.output, strict=True)],
        cache=Path(LAYER_PROBE_CACHE),
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
