# Probe phase: the HEAR downstream protocol per (configuration, task), and layer-wise
# linear probing of every per-layer member's per-layer scene embeddings per (model, task).


rule probe:
    input:
        config_dir("{cfg}", "{task}"),
    output:
        scores_file("{cfg}", "{task}"),
    params:
        **reads("numerics"),  # hearflow.numerics: the kernel and thread pins of the job
        **settings("probe.engine", "probe.grid", "probe.max_grid_points", "probe.linear", "probe.heareval_python",
                   "probe.device", "seed", "probe.seeds", "probe.bootstrap"),
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
        layer_scores_file("{model}", "{task}"),
    params:
        **reads("numerics"),  # hearflow.numerics: the kernel and thread pins of the job
        **settings("probe.layers.engine", "probe.linear", "probe.device", "seed"),
        # the MLP grid matters to the native engine only
        **settings("probe.grid", "probe.max_grid_points", when={"probe.layers.engine": "native"}),
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
        layer_probe_scores(),
