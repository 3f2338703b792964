# Report phase: metrics.json ({config: {task: {metric: value}}}) and ablation tables.


rule metrics:
    input:
        [scores_file(cfg, task) for cfg in PLAN.configs for task in PLAN.tasks],
    output:
        "reports/metrics.json",
    resources:
        mem_mb=job_mem_mb("metrics"),
        runtime=job_runtime("metrics"),
    log:
        "logs/report/metrics.log",
    conda:
        "../envs/report.yaml"
    script:
        "../scripts/metrics.py"


rule table:
    input:
        metrics="reports/metrics.json",
        scores=lambda w: [scores_file(cfg, task) for cfg in PLAN.tables[w.table] for task in PLAN.tasks],
    output:
        "reports/tables/{table}.md",
    params:
        configs=lambda w: PLAN.tables[w.table],
        suite=PLAN.suite,
    resources:
        mem_mb=job_mem_mb("table"),
        runtime=job_runtime("table"),
    log:
        "logs/report/{table}.log",
    conda:
        "../envs/report.yaml"
    script:
        "../scripts/table.py"
