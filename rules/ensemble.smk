# Ensemble phase: each configuration derived from cached member embeddings (CPU only).


rule ensemble:
    input:
        lambda w: [member_dir(m.model, w.task) for m in PLAN.configs[w.cfg].members],
    output:
        report(
            directory(config_dir("{cfg}", "{task}")),
            patterns=["{name,config}.json"],
            caption="captions/config_json.rst",
            category="3. Ensemble",
            subcategory="{cfg}",
            labels={"config": "{cfg}", "task": "{task}"},
        ),
    log:
        "logs/ensemble/{cfg}/{task}.log",
    conda:
        "../envs/data.yaml"
    threads: job_threads("ensemble")
    resources:
        mem_mb=job_mem_mb("ensemble"),
        runtime=job_runtime("ensemble"),
    params:
        **reads("numerics"),  # hearflow.core.numerics: the kernel and thread pins of the job
        # the configuration as the plan resolved it: the suite's substitutes, the default dim
        **reads("configs.{cfg}"),
        views=lambda w: [m.view for m in PLAN.configs[w.cfg].members],
        combine=lambda w: PLAN.configs[w.cfg].combine,
        dim=lambda w: PLAN.configs[w.cfg].dim,
        pooling=lambda w: PLAN.configs[w.cfg].pooling,
    script:
        "../scripts/ensemble.py"


rule ensemble_all:
    input:
        [config_dir(cfg, task) for cfg in PLAN.configs for task in PLAN.tasks],
