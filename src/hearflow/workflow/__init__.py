"""The workflow layer: what Snakemake and DVC run, planned from params.yaml. No job imports it.

Read at parse time by the Snakefile and rules/*.smk (no heavy imports, so `snakemake -n`
stays fast), and by the command-line tools.

- config: params.yaml validated (schemas/params.schema.yaml) and the run's plan;
  keys: dotted params keys with a suite's overrides (setting, key_sources).
- rules: the rule registry parsed from rules/*.smk (what params keys each rule reads).
- targets: every output path template and what a plan produces.
- resources: each job's threads, memory and runtime (Slurm requests).
- dvcgen: dvc.yaml generated from the rules (`python -m hearflow.workflow.dvcgen`);
  dvcrun: the stage command `dvc repro` runs; dvcfile: dvc.yaml read back; locks: a dead
  run's Snakemake lock recognised and removed; lockcheck: the committed dvc.lock against the code.
- plan, sizes: the resource planner (`python -m hearflow.workflow.plan --suite hear2021`).
"""
