# Embedding phase: one forward pass per clip, all layers kept. A suite's `embed_jobs` picks
# the shape of the jobs: `narrow`, one job per (model, task), rule embed; `wide`, one job
# per model over every task, rule embed_wide (one interpreter start and one model load
# instead of one per task; each task's finished batches are kept until the whole job is
# done, so a restarted job recomputes nothing it had finished). Each rule's wildcard
# constraint lets exactly one of them build a member's embeddings.


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
    wildcard_constraints:
        model=_one_of([] if WIDE_EMBEDS else PLAN.models),
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


rule embed_wide:
    input:
        tasks=lambda w: [task_dir(PLAN.rate(w.model), task) for task in PLAN.tasks],
        checkpoint=lambda w: [standin_dir(w.model)] if "standin" in PLAN.models[w.model] else [],
    output:
        [
            report(
                directory(member_dir("{model}", task)),
                patterns=["{name,provenance}.json"],
                caption="captions/member_provenance.rst",
                category="2. Embed",
                subcategory="{model}",
                labels={"model": "{model}", "task": task},
            )
            for task in PLAN.tasks
        ],
    log:
        "logs/embed/{model}.log",
    wildcard_constraints:
        model=_one_of(PLAN.models if WIDE_EMBEDS else []),
    priority: PRIORITY["embed"]
    conda:
        "../envs/models.yaml"
    threads: embed_threads
    resources:
        gpu=lambda w: embed_request(w.model)["gpu"],
        mem_mb=embed_mem_mb,
        runtime=embed_runtime,  # for the audio of every task
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
        "../scripts/embed_wide.py"


rule embed_all:
    input:
        [member_dir(model, task) for model in PLAN.models for task in PLAN.tasks],
