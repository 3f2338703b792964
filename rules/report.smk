# Report phase: metrics.json ({config: {task: {metric: value}}}) and ablation tables.


rule metrics:
    input:
        [scores_file(cfg, task) for cfg in PLAN.configs for task in PLAN.tasks],
    output:
        "reports/metrics.json",
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
    log:
        "logs/report/{table}.log",
    conda:
        "../envs/report.yaml"
    script:
        "../scripts/table.py"


rule score_plot:
    input:
        [scores_file(cfg, task) for cfg in PLAN.configs for task in PLAN.tasks],
    output:
        "reports/plots/scores.csv",
    log:
        "logs/report/score_plot.log",
    conda:
        "../envs/report.yaml"
    script:
        "../scripts/score_plot.py"
