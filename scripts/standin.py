"""Write a seeded, randomly initialised stand-in checkpoint."""

from hearflow.models.standin import build_standin
from hearflow.smk import run


def main(smk):
    build_standin(out_dir=smk.output[0], seed=smk.params.seed, **smk.params.spec)


run(snakemake, main)  # noqa: F821
