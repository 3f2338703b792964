"""Derive one configuration's embeddings for one task from its members' cached views."""

from pathlib import Path

from hearflow.core.smk import run
from hearflow.ensemble.derive import build_config, member_views


def main(smk):
    pooling = smk.params.pooling
    views = member_views(list(smk.input), list(smk.params.views), pooling)
    build_config(views, Path(smk.output[0]), combine=smk.params.combine, dim=smk.params.dim, pooling=pooling)


run(snakemake, main)  # noqa: F821
