# Embedding phase: one job per (model, task), one forward pass per clip, all layers kept.


rule standin:
    output:
        directory("data/models/{model}"),
    params:
        spec=lambda w: PLAN.models[w.model]["standin"],
        seed=config["seed"],
    threads: job_threads("standin")
    resources:
        mem_mb=job_mem_mb("standin"),
        runtime=job_runtime("standin"),
    log:
        "logs/standin/{model}.log",
    conda:
        "../envs/models.yaml"
    script:
        "../scripts/standin.py"


rule embed:
    input:
        task=lambda w: task_dir(PLAN.rate(w.model), w.task),
        checkpoint=lambda w: [standin_dir(w.model)] if "standin" in PLAN.models[w.model] else [],
    output:
        directory("results/members/{model}/{task}"),
    params:
        module=lambda w: PLAN.models[w.model]["module"],
        options=lambda w: load_options(w.model),
        batch_size=PLAN.embed["batch_size"],
        max_padding=PLAN.embed["max_padding"],
        max_batch_seconds=PLAN.embed["max_batch_seconds"],
        precision=PLAN.embed["precision"],
        device=PLAN.embed["device"],
        scene_groups=PLAN.embed["scene_groups"],
    threads: embed_threads
    resources:
        gpu=lambda w: embed_request(w.model)["gpu"],
        mem_mb=embed_mem_mb,
        runtime=embed_runtime,
    log:
        "logs/embed/{model}/{task}.log",
    conda:
        "../envs/models.yaml"
    script:
        "../scripts/embed.py"


rule embed_all:
    input:
        [member_dir(model, task) for model in PLAN.models for task in PLAN.tasks],
