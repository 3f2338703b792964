# Embedding phase: one job per (model, task), one forward pass per clip, all layers kept.


rule standin:
    output:
        directory(standin_dir("{model}")),
    log:
        "logs/standin/{model}.log",
    priority: PRIORITY["data"]
    conda:
        "../envs/models.yaml"
    threads: job_threads("standin")
    resources:
        mem_mb=job_mem_mb("standin"),
        runtime=job_runtime("standin"),
    params:
        **reads("numerics"),  # hearflow.core.numerics: the kernel and thread pins of the job
        **settings("seed", spec="models.{model}.standin"),
    script:
        "../scripts/standin.py"


rule embed:
    input:
        task=lambda w: task_dir(PLAN.rate(w.model), w.task),
        checkpoint=lambda w: [standin_dir(w.model)] if "standin" in PLAN.models[w.model] else [],
    output:
        report(
            directory(member_dir("{model}", "{task}")),
            patterns=["{name,provenance}.json"],
            caption="captions/member_provenance.rst",
            category="2. Embed",
            subcategory="{model}",
            labels={"model": "{model}", "task": "{task}"},
        ),
    log:
        "logs/embed/{model}/{task}.log",
    priority: PRIORITY["embed"]
    conda:
        "../envs/models.yaml"
    threads: embed_threads
    resources:
        gpu=lambda w: embed_request(w.model)["gpu"],
        mem_mb=embed_mem_mb,
        runtime=embed_runtime,
    params:
        **reads("numerics"),  # hearflow.core.numerics: the kernel and thread pins of the job
        **reads("models.{model}.options", "models.{model}.standin"),
        **settings(
            "models.{model}.module",
            "embed.batch_size",
            "embed.max_padding",
            "embed.max_batch_seconds",
            "embed.precision",
            "embed.device",
            "embed.scene_groups",
        ),
        options=lambda w: load_options(w.model),  # the stand-in's checkpoint folder added
    script:
        "../scripts/embed.py"


rule embed_all:
    input:
        [member_dir(model, task) for model in PLAN.models for task in PLAN.tasks],
