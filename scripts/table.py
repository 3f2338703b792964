"""Write one of the paper's tables as Markdown, CSV and LaTeX."""

from pathlib import Path

from hearflow.core.smk import run
from hearflow.report.formats import write_tables


def main(smk):
    write_tables(
        Path(smk.input.metrics),
        Path(smk.input.paper),
        [Path(p) for p in smk.input.scores],
        {k: Path(smk.output[k]) for k in ("md", "csv", "tex")},
        name=smk.wildcards.table,
        configs=list(smk.params.configs),
        tasks=list(smk.params.tasks),
        evaluation=dict(smk.params.evaluation),
        suite=smk.params.suite,
        pairs=[list(p) for p in smk.params.pairs],
    )


run(snakemake, main)  # noqa: F821
