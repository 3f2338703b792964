# Probe phase: the HEAR downstream protocol per (configuration, task), and layer-wise
# linear probing of every SSL member's per-layer scene embeddings per (model, task).


rule probe:
    input:
        "results/configs/{cfg}/{task}",
    output:
        "results/probe/{cfg}/{task}/scores.json",
    params:
        engine=PLAN.probe["engine"],
        grid=PLAN.probe["grid"],
        max_grid_points=PLAN.probe["max_grid_points"],
        linear=PLAN.probe["linear"],
        heareval_python=PLAN.probe["heareval_python"],
        device=PLAN.probe["device"],
        seed=config["seed"],
    threads: job_threads("probe")
    resources:
        mem_mb=job_mem_mb("probe"),
        runtime=job_runtime("probe"),
    log:
        "logs/probe/{cfg}/{task}.log",
    conda:
        "../envs/probe.yaml"
    script:
        "../scripts/probe.py"


rule probe_all:
    input:
        [scores_file(cfg, task) for cfg in PLAN.configs for task in PLAN.tasks],


rule probe_layers:
    input:
        lambda w: member_dir(w.model, w.task),
    output:
        "results/probe_layers/{model}/{task}/scores.json",
    params:
        engine=PLAN.probe["layers"]["engine"],
        linear=PLAN.probe["linear"],
        # the MLP grid matters to the native engine only (dvc.yaml lists it likewise)
        grid=PLAN.probe["grid"] if PLAN.probe["layers"]["engine"] == "native" else None,
        max_grid_points=PLAN.probe["max_grid_points"] if PLAN.probe["layers"]["engine"] == "native" else None,
        device=PLAN.probe["device"],
        seed=config["seed"],
    threads: job_threads("probe_layers")
    resources:
        mem_mb=job_mem_mb("probe_layers"),
        runtime=job_runtime("probe_layers"),
    log:
        "logs/probe_layers/{model}/{task}.log",
    conda:
        "../envs/probe.yaml"
    script:
        "../scripts/probe_layers.py"


rule probe_layers_all:
    input:
        layer_scores_files(),
