"""Figure: layer-wise probe curves of the SSL models."""

from pathlib import Path

from hearflow.core.io import read_json
from hearflow.core.smk import run
from hearflow.report.figures import write_layer_figure


def main(smk):
    write_layer_figure(
        [Path(p) for p in smk.input],
        Path(smk.output.png).with_suffix(""),
        Path(smk.output.data),
        Path(smk.output.caption),
        suite=smk.params.suite,
        stand_in=any(read_json(p).get("stand_in") for p in smk.input),
    )


run(snakemake, main)  # noqa: F821
