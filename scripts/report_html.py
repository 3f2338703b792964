"""reports/report.html: tables, figures, params and provenance in one self-contained page."""

from pathlib import Path

import yaml

from hearflow.core.io import read_json
from hearflow.core.smk import run
from hearflow.report.formats import read_table_csv
from hearflow.report.html import gather_provenance, git_state, snakemake_job_times, write_report


def main(smk):
    root = Path.cwd()
    stand_in = any(read_json(p).get("stand_in") for p in smk.input.scores)
    write_report(
        Path(smk.output[0]),
        suite=smk.params.suite,
        tables=[read_table_csv(Path(p), suite=smk.params.suite, stand_in=stand_in) for p in smk.input.tables],
        figures=[(Path(png), Path(txt).read_text().strip()) for png, txt in zip(smk.input.figures, smk.input.captions)],
        params_text=yaml.safe_dump(dict(smk.params.config), sort_keys=False),
        provenance=gather_provenance(
            [Path(p) for p in smk.input.scores],
            [Path(d) for d in smk.input.members],
            [Path(p) for p in smk.input.layers],
        ),
        git=git_state(root),
        job_times=snakemake_job_times(root / smk.params.snakemake_metadata, root),
        stand_in=stand_in,
    )


run(snakemake, main)  # noqa: F821
