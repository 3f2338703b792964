"""Write one ablation group's Markdown table."""
from pathlib import Path

from hearflow.report import write_table
from hearflow.smk import run


def main(smk):
    write_table(
        Path(smk.input.metrics), [Path(p) for p in smk.input.scores], Path(smk.output[0]),
        title=smk.wildcards.table, configs=list(smk.params.configs), suite=smk.params.suite,
    )


run(snakemake, main)  # noqa: F821
