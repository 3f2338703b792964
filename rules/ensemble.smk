# Ensemble phase: each configuration derived from cached member embeddings (CPU only).


rule ensemble:
    input:
        lambda w: [member_dir(m.model, w.task) for m in PLAN.configs[w.cfg].members],
    output:
        directory(config_dir("{cfg}", "{task}")),
    params:
        **reads("numerics"),  # hearflow.numerics: the kernel and thread pins of the job
        # the configuration as the plan resolved it: the suite's substitutes, the default dim
        views=lambda w: [m.view for m in PLAN.configs[w.cfg].members],
        combine=lambda w: PLAN.configs[w.cfg].combine,
        dim=lambda w: PLAN.configs[w.cfg].dim,
        pooling=lambda w: PLAN.configs[w.cfg].pooling,
        **reads("configs.{cfg}"),
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
