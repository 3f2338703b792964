# Ensemble phase: each configuration derived from cached member embeddings (CPU only).


rule ensemble:
    input:
        lambda w: [member_dir(m.model, w.task) for m in PLAN.configs[w.cfg].members],
    output:
        directory("results/configs/{cfg}/{task}"),
    params:
        views=lambda w: [m.view for m in PLAN.configs[w.cfg].members],
        combine=lambda w: PLAN.configs[w.cfg].combine,
        dim=lambda w: PLAN.configs[w.cfg].dim,
        pooling=lambda w: PLAN.configs[w.cfg].pooling,
    threads: job_threads("ensemble")
    resources:
        mem_mb=job_mem_mb("ensemble"),
        runtime=job_runtime("ensemble"),
    log:
        "logs/ensemble/{cfg}/{task}.log",
    conda:
        "../envs/data.yaml"
    script:
        "../scripts/ensemble.py"


rule ensemble_all:
    input:
        [config_dir(cfg, task) for cfg in PLAN.configs for task in PLAN.tasks],
