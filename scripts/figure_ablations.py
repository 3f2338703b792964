"""Figure: per-task deltas of the paper's ablation pairs."""

from pathlib import Path

from hearflow.core.io import read_json
from hearflow.core.smk import run
from hearflow.report.figures import write_ablation_figure


def main(smk):
    write_ablation_figure(
        Path(smk.input.metrics),
        Path(smk.input.paper),
        Path(smk.output.png).with_suffix(""),
        Path(smk.output.data),
        Path(smk.output.caption),
        pairs=[list(p) for p in smk.params.pairs],
        facts=dict(smk.params.facts),
        suite=smk.params.suite,
        stand_in=any(read_json(p).get("stand_in") for p in smk.input.scores),
        score_files=[Path(p) for p in smk.input.scores],
    )


run(snakemake, main)  # noqa: F821
