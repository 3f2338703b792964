"""Write a seeded, randomly initialised stand-in checkpoint."""

from hearflow.core.smk import run
from hearflow.embed.models.standin import build_standin


def main(smk):
    build_standin(out_dir=smk.output[0], seed=smk.params.seed, **smk.params.spec)


run(snakemake, main)  # noqa: F821
