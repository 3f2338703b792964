"""Probe one configuration on one task with the chosen engine (HEAR protocol or linear)."""

from pathlib import Path

from hearflow.probe_job import run_probe
from hearflow.smk import run, set_threads


def main(smk):
    set_threads(smk.threads)
    run_probe(
        Path(smk.input[0]),
        Path(smk.output[0]),
        engine=smk.params.engine,
        grid=dict(smk.params.grid),
        max_grid_points=smk.params.max_grid_points,
        seed=smk.params.seed,
        seeds=smk.params.seeds,
        bootstrap=smk.params.bootstrap,
        linear=dict(smk.params.linear),
        heareval_python=smk.params.heareval_python,
        device=smk.params.device,
        workers=smk.threads,
        log=Path(smk.log[0]).with_suffix(".heareval.log"),
    )


run(snakemake, main)  # noqa: F821
