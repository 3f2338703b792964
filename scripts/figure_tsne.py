"""Figure: t-SNE of fusion clip embeddings coloured by task (the paper's Figure 2)."""

from pathlib import Path

from hearflow.core import numerics
from hearflow.core.io import read_json
from hearflow.core.smk import run
from hearflow.report.figures import write_tsne_figure


def main(smk):
    members = {m: {t: Path(d) for t, d in tasks.items()} for m, tasks in smk.params.members.items()}
    write_tsne_figure(
        members,
        Path(smk.output.png).with_suffix(""),
        Path(smk.output.data),
        Path(smk.output.caption),
        points_per_task=smk.params.points_per_task,
        perplexity=smk.params.perplexity,
        seed=smk.params.seed,
        suite=smk.params.suite,
        threads=numerics.job_threads(smk.threads),  # numerics.threads in reproducible mode
        stand_in=any(read_json(Path(d) / "provenance.json").get("stand_in") for d in smk.input),
    )


run(snakemake, main)  # noqa: F821
