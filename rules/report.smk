# Report phase: metrics.json, the paper's Tables 2-6, figures and one self-contained HTML page.


rule metrics:
    input:
        all_scores(),
    output:
        "reports/metrics.json",
        "reports/metrics_ci.json",
    threads: job_threads("metrics")
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
        paper="reports/paper/tables.csv",
        scores=lambda w: [scores_file(cfg, task) for cfg in PLAN.tables[w.table] for task in PLAN.tasks],
    output:
        md="reports/tables/{table}.md",
        csv="reports/tables/{table}.csv",
        tex="reports/tables/{table}.tex",
    params:
        configs=lambda w: PLAN.tables[w.table],
        tasks=list(PLAN.tasks),
        evaluation={t: f["evaluation"] for t, f in TASK_FACTS.items()},
        pairs=ABLATIONS,  # [base, variant] pairs: the paired-difference columns
        **settings("suite"),
        **reads("report.tables", "report.figures.ablations"),
    threads: job_threads("table")
    resources:
        mem_mb=job_mem_mb("table"),
        runtime=job_runtime("table"),
    log:
        "logs/report/{table}.log",
    conda:
        "../envs/report.yaml"
    script:
        "../scripts/table.py"


rule figure_scores:
    input:
        metrics="reports/metrics.json",
        paper="reports/paper/tables.csv",
        scores=all_scores(),
    output:
        png="reports/figures/scores_by_category.png",
        pdf="reports/figures/scores_by_category.pdf",
        caption="reports/figures/scores_by_category.txt",
        data="reports/plots/scores_by_category.csv",
    params:
        configs=list(PLAN.configs),
        facts=TASK_FACTS,
        **settings("suite"),
    threads: job_threads("figure_scores")
    resources:
        mem_mb=job_mem_mb("figure_scores"),
        runtime=job_runtime("figure_scores"),
    log:
        "logs/report/figure_scores.log",
    conda:
        "../envs/report.yaml"
    script:
        "../scripts/figure_scores.py"


rule figure_ablations:
    input:
        metrics="reports/metrics.json",
        paper="reports/paper/tables.csv",
        scores=all_scores(),
    output:
        png="reports/figures/ablation_deltas.png",
        pdf="reports/figures/ablation_deltas.pdf",
        caption="reports/figures/ablation_deltas.txt",
        data="reports/plots/ablation_deltas.csv",
    params:
        pairs=ABLATIONS,
        facts=TASK_FACTS,
        **settings("suite"),
        **reads("report.figures.ablations"),
    threads: job_threads("figure_ablations")
    resources:
        mem_mb=job_mem_mb("figure_ablations"),
        runtime=job_runtime("figure_ablations"),
    log:
        "logs/report/figure_ablations.log",
    conda:
        "../envs/report.yaml"
    script:
        "../scripts/figure_ablations.py"


rule figure_tsne:
    input:
        [member_dir(m, t) for m in TSNE_MODELS for t in TSNE_TASKS],
    output:
        png="reports/figures/tsne_fusion.png",
        pdf="reports/figures/tsne_fusion.pdf",
        caption="reports/figures/tsne_fusion.txt",
        data="reports/plots/tsne_fusion.csv",
    params:
        members={m: {t: member_dir(m, t) for t in TSNE_TASKS} for m in TSNE_MODELS},
        **settings("report.figures.tsne.points_per_task", "report.figures.tsne.perplexity", "seed", "suite"),
        **reads("report.figures.tsne.models", "report.figures.tsne.exclude_tasks"),
    priority: PRIORITY["tsne"]
    threads: job_threads("figure_tsne")
    resources:
        mem_mb=job_mem_mb("figure_tsne"),
        runtime=job_runtime("figure_tsne"),
    log:
        "logs/report/figure_tsne.log",
    conda:
        "../envs/report.yaml"
    script:
        "../scripts/figure_tsne.py"


rule figure_layers:
    input:
        layer_curve_scores(),
    output:
        png="reports/figures/layer_curves.png",
        pdf="reports/figures/layer_curves.pdf",
        caption="reports/figures/layer_curves.txt",
        data="reports/plots/layer_curves.csv",
    params:
        **settings("suite"),
    threads: job_threads("figure_layers")
    resources:
        mem_mb=job_mem_mb("figure_layers"),
        runtime=job_runtime("figure_layers"),
    log:
        "logs/report/figure_layers.log",
    conda:
        "../envs/report.yaml"
    script:
        "../scripts/figure_layers.py"


rule report_html:
    input:
        tables=[f"reports/tables/{t}.csv" for t in PLAN.tables],
        figures=[f"reports/figures/{f}.png" for f in figure_names()],
        captions=[f"reports/figures/{f}.txt" for f in figure_names()],
        scores=all_scores(),
        members=[member_dir(m, t) for m in PLAN.models for t in PLAN.tasks],
        layers=layer_curve_scores(),
    output:
        "reports/report.html",
    params:
        config=config,  # shown in the page: every key
        snakemake_metadata=".snakemake/metadata",
        **settings("suite"),
        **reads("*"),
    threads: job_threads("report_html")
    resources:
        mem_mb=job_mem_mb("report_html"),
        runtime=job_runtime("report_html"),
    log:
        "logs/report/report_html.log",
    conda:
        "../envs/report.yaml"
    script:
        "../scripts/report_html.py"


rule report_all:
    input:
        report_outputs(),


rule score_plot:
    input:
        all_scores(),
    output:
        "reports/plots/scores.csv",
    threads: job_threads("score_plot")
    resources:
        mem_mb=job_mem_mb("score_plot"),
        runtime=job_runtime("score_plot"),
    log:
        "logs/report/score_plot.log",
    conda:
        "../envs/report.yaml"
    script:
        "../scripts/score_plot.py"


# Resource plan (hearflow.plan): `snakemake plan` writes reports/plan/<suite>.{md,json} for
# every suite with a task catalog (hear2021, hear2021-sim), whichever suite is active.
PLANNED_SUITES = sorted(s for s, spec in config["suites"].items() if spec.get("catalog"))


rule plan_suite:
    input:
        "params.yaml",
        lambda w: config["suites"][w.suite]["catalog"],
    output:
        md="reports/plan/{suite}.md",
        json="reports/plan/{suite}.json",
    wildcard_constraints:
        suite=_one_of(PLANNED_SUITES),
    params:
        python=PYTHON,  # torch-free: Snakemake's own interpreter has what it needs
    log:
        "logs/plan/{suite}.log",
    localrule: True
    conda:
        "../envs/report.yaml"
    shell:
        '"{params.python}" -m hearflow.plan --suite {wildcards.suite} --output {output.md} --json {output.json} > {log} 2>&1'


rule plan:
    input:
        [f"reports/plan/{s}.md" for s in PLANNED_SUITES],
