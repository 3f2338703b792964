# hearflow: HEAR 2021 experiments of "The Ability of Self-Supervised Speech Models for Audio
# Representations" as one DAG. Wiring only: settings in params.yaml, logic in src/hearflow.
#
#   snakemake -n                                  # plan the demo suite
#   snakemake --cores all                         # run it locally
#   snakemake --profile slurm                     # run it on a Slurm cluster (profiles/slurm)
from snakemake.utils import min_version

min_version("9.0")


configfile: "params.yaml"


# `snakemake --report report.html` (after a run): Snakemake's own report, a category per phase
report: "rules/captions/workflow.rst"


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/embed.smk"
include: "rules/ensemble.smk"
include: "rules/probe.smk"
include: "rules/report.smk"


rule all:
    input:
        final_outputs(),
