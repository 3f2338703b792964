"""Embed every task of the suite with one model in one job (rule embed_wide): one start and
one model load; each task's finished batches are kept until the job is done, so a restarted
job recomputes only what it had not finished."""

from pathlib import Path

from hearflow.core.smk import run, set_threads
from hearflow.embed.job import embed_tasks


def main(smk):
    set_threads(smk.threads)
    embed_tasks(
        [(Path(t), Path(o)) for t, o in zip(smk.input.tasks, smk.output, strict=True)],
        module=smk.params.module,
        options=dict(smk.params.options),
        batch_size=smk.params.batch_size,
        max_padding=smk.params.max_padding,
        max_batch_seconds=smk.params.max_batch_seconds,
        precision=smk.params.precision,
        device=smk.params.device,
        scene_groups=list(smk.params.scene_groups),
        provenance={"model": smk.wildcards.model},
    )


run(snakemake, main)  # noqa: F821
