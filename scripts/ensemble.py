"""Derive one configuration's embeddings for one task from its members' cached views."""
from pathlib import Path

from hearflow.ensemble import build_config
from hearflow.smk import run


def main(smk):
    views = [Path(member) / view for member, view in zip(smk.input, smk.params.views)]
    build_config(views, Path(smk.output[0]), combine=smk.params.combine, dim=smk.params.dim)


run(snakemake, main)  # noqa: F821
