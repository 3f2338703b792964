"""Embed one task with one model: one forward pass per clip, every view written."""

from pathlib import Path

from hearflow.core.smk import run, set_threads
from hearflow.embed.job import embed_task


def main(smk):
    set_threads(smk.threads)
    embed_task(
        Path(smk.input.task),
        Path(smk.output[0]),
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
