# Report phase: metrics.json, the paper's Tables 2-6, figures and one self-contained HTML page.


rule metrics:
    input:
        all_scores(),
    output:
        report_item("reports/metrics.json", "metrics", "metrics", file="metrics.json (means)"),
        report_item("reports/metrics_ci.json", "metrics", "metrics", file="metrics_ci.json (95% intervals)"),
    log:
        "logs/report/metrics.log",
    conda:
        "../envs/report.yaml"
    threads: job_threads("metrics")
    resources:
        mem_mb=job_mem_mb("metrics"),
        runtime=job_runtime("metrics"),
    script:
        "../scripts/metrics.py"


rule table:
    input:
        metrics="reports/metrics.json",
        paper="reports/paper/tables.csv",
        scores=lambda w: [scores_file(cfg, task) for cfg in PLAN.tables[w.table] for task in PLAN.tasks],
    output:
        md=report_item("reports/tables/{table}.md", "table", "{table}", table="{table}", format="Markdown"),
        csv=report_item("reports/tables/{table}.csv", "table", "{table}", table="{table}", format="CSV"),
        tex=report_item("reports/tables/{table}.tex", "table", "{table}", table="{table}", format="LaTeX"),
    log:
        "logs/report/{table}.log",
    conda:
        "../envs/report.yaml"
    threads: job_threads("table")
    resources:
        mem_mb=job_mem_mb("table"),
        runtime=job_runtime("table"),
    params:
        **settings("suite"),
        **reads("report.tables", "report.figures.ablations"),
        configs=lambda w: PLAN.tables[w.table],
        tasks=list(PLAN.tasks),
        evaluation={t: f["evaluation"] for t, f in TASK_FACTS.items()},
        pairs=ABLATIONS,  # [base, variant] pairs: the paired-difference columns
    script:
        "../scripts/table.py"


rule figure_scores:
    input:
        metrics="reports/metrics.json",
        paper="reports/paper/tables.csv",
        scores=all_scores(),
    output:
        png=report_item(
            "reports/figures/scores_by_category.png",
            "figure",
            "scores_by_category",
            figure="scores_by_category",
            file="figure",
        ),
        pdf="reports/figures/scores_by_category.pdf",
        caption="reports/figures/scores_by_category.txt",
        data=report_item(
            "reports/plots/scores_by_category.csv",
            "figure",
            "scores_by_category",
            figure="scores_by_category",
            file="plotted numbers (CSV)",
        ),
    log:
        "logs/report/figure_scores.log",
    conda:
        "../envs/report.yaml"
    threads: job_threads("figure_scores")
    resources:
        mem_mb=job_mem_mb("figure_scores"),
        runtime=job_runtime("figure_scores"),
    params:
        **settings("suite"),
        configs=list(PLAN.configs),
        facts=TASK_FACTS,
    script:
        "../scripts/figure_scores.py"


rule figure_ablations:
    input:
        metrics="reports/metrics.json",
        paper="reports/paper/tables.csv",
        scores=all_scores(),
    output:
        png=report_item(
            "reports/figures/ablation_deltas.png", "figure", "ablation_deltas", figure="ablation_deltas", file="figure"
        ),
        pdf="reports/figures/ablation_deltas.pdf",
        caption="reports/figures/ablation_deltas.txt",
        data=report_item(
            "reports/plots/ablation_deltas.csv",
            "figure",
            "ablation_deltas",
            figure="ablation_deltas",
            file="plotted numbers (CSV)",
        ),
    log:
        "logs/report/figure_ablations.log",
    conda:
        "../envs/report.yaml"
    threads: job_threads("figure_ablations")
    resources:
        mem_mb=job_mem_mb("figure_ablations"),
        runtime=job_runtime("figure_ablations"),
    params:
        **settings("suite"),
        **reads("report.figures.ablations"),
        pairs=ABLATIONS,
        facts=TASK_FACTS,
    script:
        "../scripts/figure_ablations.py"


rule figure_tsne:
    input:
        [member_dir(m, t) for m in TSNE_MODELS for t in TSNE_TASKS],
    output:
        png=report_item("reports/figures/tsne_fusion.png", "figure", "tsne_fusion", figure="tsne_fusion", file="figure"),
        pdf="reports/figures/tsne_fusion.pdf",
        caption="reports/figures/tsne_fusion.txt",
        data=report_item(
            "reports/plots/tsne_fusion.csv",
            "figure",
            "tsne_fusion",
            figure="tsne_fusion",
            file="plotted numbers (CSV)",
        ),
    log:
        "logs/report/figure_tsne.log",
    priority: PRIORITY["tsne"]
    conda:
        "../envs/report.yaml"
    threads: job_threads("figure_tsne")
    resources:
        mem_mb=job_mem_mb("figure_tsne"),
        runtime=job_runtime("figure_tsne"),
    params:
        **settings("report.figures.tsne.points_per_task", "report.figures.tsne.perplexity", "seed", "suite"),
        **reads("report.figures.tsne.models", "report.figures.tsne.exclude_tasks"),
        members={m: {t: member_dir(m, t) for t in TSNE_TASKS} for m in TSNE_MODELS},
    script:
        "../scripts/figure_tsne.py"


rule figure_layers:
    input:
        layer_curve_scores(),
    output:
        png=report_item(
            "reports/figures/layer_curves.png", "figure", "layer_curves", figure="layer_curves", file="figure"
        ),
        pdf="reports/figures/layer_curves.pdf",
        caption="reports/figures/layer_curves.txt",
        data=report_item(
            "reports/plots/layer_curves.csv",
            "figure",
            "layer_curves",
            figure="layer_curves",
            file="plotted numbers (CSV)",
        ),
    log:
        "logs/report/figure_layers.log",
    conda:
        "../envs/report.yaml"
    threads: job_threads("figure_layers")
    resources:
        mem_mb=job_mem_mb("figure_layers"),
        runtime=job_runtime("figure_layers"),
    params:
        **settings("suite"),
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
    log:
        "logs/report/report_html.log",
    conda:
        "../envs/report.yaml"
    threads: job_threads("report_html")
    resources:
        mem_mb=job_mem_mb("report_html"),
        runtime=job_runtime("report_html"),
    params:
        **settings("suite"),
        **reads("*"),
        config=config,  # shown in the page: every key
        snakemake_metadata=".snakemake/metadata",
    script:
        "../scripts/report_html.py"


rule report_all:
    input:
        report_outputs(),


rule score_plot:
    input:
        all_scores(),
    output:
        report_item("reports/plots/scores.csv", "score_plot", "metrics", file="plots/scores.csv (dvc plots)"),
    log:
        "logs/report/score_plot.log",
    conda:
        "../envs/report.yaml"
    threads: job_threads("score_plot")
    resources:
        mem_mb=job_mem_mb("score_plot"),
        runtime=job_runtime("score_plot"),
    script:
        "../scripts/score_plot.py"


# Resource plan (hearflow.workflow.plan): `snakemake plan` writes reports/plan/<suite>.{md,json} for
# every suite with a task catalog (hear2021, hear2021-sim), whichever suite is active.
PLANNED_SUITES = sorted(s for s, spec in config["suites"].items() if spec.get("catalog"))


rule plan_suite:
    input:
        "params.yaml",
        lambda w: config["suites"][w.suite]["catalog"],
    output:
        md="reports/plan/{suite}.md",
        json="reports/plan/{suite}.json",
    log:
        "logs/plan/{suite}.log",
    wildcard_constraints:
        suite=_one_of(PLANNED_SUITES),
    localrule: True
    conda:
        "../envs/report.yaml"
    params:
        python=PYTHON,  # torch-free: Snakemake's own interpreter has what it needs
    shell:
        '"{params.python}" -m hearflow.workflow.plan --suite {wildcards.suite} --output {output.md} --json {output.json} > {log} 2>&1'


rule plan:
    input:
        [f"reports/plan/{s}.md" for s in PLANNED_SUITES],
