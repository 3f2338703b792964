# Probe phase: the HEAR downstream protocol per (configuration, task), and layer-wise
# linear probing of every per-layer member's per-layer scene embeddings per (model, task).
# A suite's `probe_jobs` picks the shape of the probe jobs: `narrow`, one job per
# (configuration, task), rule probe, and one per (model, scene task), rule probe_layers;
# `wide`, one job per configuration over every task, rule probe_wide, and one per model over
# every scene task, rule probe_layers_wide (one interpreter start instead of one per task; a
# cache of each task's scores makes a rerun or a restarted job compute only what changed).
# Each rule's wildcard constraint lets exactly one of them build a scores file.

LAYER_PAIRS = layer_probe_pairs(PLAN)
LAYER_MODELS = list(dict.fromkeys(m for m, _ in LAYER_PAIRS))
LAYER_TASKS = list(dict.fromkeys(t for _, t in LAYER_PAIRS))  # the same scene tasks for every model


rule probe:
    input:
        config_dir("{cfg}", "{task}"),
    output:
        report(
            scores_file("{cfg}", "{task}"),
            caption="captions/scores.rst",
            category="4. Probe",
            subcategory="{cfg}",
            labels={"config": "{cfg}", "task": "{task}"},
        ),
    log:
        "logs/probe/{cfg}/{task}.log",
    wildcard_constraints:
        cfg=_one_of([] if WIDE_PROBES else PLAN.configs),
    conda:
        "../envs/probe.yaml"
    threads: job_threads("probe")
    resources:
        mem_mb=job_mem_mb("probe"),
        runtime=job_runtime("probe"),
    params:
        **reads("numerics"),  # hearflow.core.numerics: the kernel and thread pins of the job
        **settings(
            "probe.engine",
            "probe.grid",
            "probe.max_grid_points",
            "probe.linear",
            "probe.heareval_python",
            "probe.device",
            "seed",
            "probe.seeds",
            "probe.bootstrap",
        ),
    script:
        "../scripts/probe.py"


rule probe_wide:
    input:
        [config_dir("{cfg}", task) for task in PLAN.tasks],
    output:
        [
            report(
                scores_file("{cfg}", task),
                caption="captions/scores.rst",
                category="4. Probe",
                subcategory="{cfg}",
                labels={"config": "{cfg}", "task": task},
            )
            for task in PLAN.tasks
        ],
    log:
        "logs/probe/{cfg}.log",
    wildcard_constraints:
        cfg=_one_of(PLAN.configs if WIDE_PROBES else []),
    conda:
        "../envs/probe.yaml"
    threads: job_threads("probe_wide")
    resources:
        mem_mb=job_mem_mb("probe_wide"),
        runtime=job_runtime("probe_wide", times=len(PLAN.tasks)),  # the entry's runtime per task
    params:
        **reads("numerics"),  # hearflow.core.numerics: the kernel and thread pins of the job
        **settings(
            "probe.engine",
            "probe.grid",
            "probe.max_grid_points",
            "probe.linear",
            "probe.heareval_python",
            "probe.device",
            "seed",
            "probe.seeds",
            "probe.bootstrap",
        ),
    script:
        "../scripts/probe_wide.py"


rule probe_all:
    input:
        [scores_file(cfg, task) for cfg in PLAN.configs for task in PLAN.tasks],


rule probe_layers:
    input:
        lambda w: member_dir(w.model, w.task),
    output:
        report(
            layer_scores_file("{model}", "{task}"),
            caption="captions/layer_scores.rst",
            category="4. Probe",
            subcategory="layers of {model}",
            labels={"model": "{model}", "task": "{task}"},
        ),
    log:
        "logs/probe_layers/{model}/{task}.log",
    wildcard_constraints:
        model=_one_of([] if WIDE_PROBES else LAYER_MODELS),
    conda:
        "../envs/probe.yaml"
    threads: job_threads("probe_layers")
    resources:
        mem_mb=job_mem_mb("probe_layers"),
        runtime=job_runtime("probe_layers"),
    params:
        **reads("numerics"),  # hearflow.core.numerics: the kernel and thread pins of the job
        **settings("probe.layers.engine", "probe.linear", "probe.device", "seed"),
        # the MLP grid matters to the native engine only
        **settings("probe.grid", "probe.max_grid_points", when={"probe.layers.engine": "native"}),
    script:
        "../scripts/probe_layers.py"


rule probe_layers_wide:
    input:
        lambda w: [member_dir(w.model, task) for task in LAYER_TASKS],
    output:
        [
            report(
                layer_scores_file("{model}", task),
                caption="captions/layer_scores.rst",
                category="4. Probe",
                subcategory="layers of {model}",
                labels={"model": "{model}", "task": task},
            )
            for task in LAYER_TASKS
        ],
    log:
        "logs/probe_layers/{model}.log",
    wildcard_constraints:
        model=_one_of(LAYER_MODELS if WIDE_PROBES else []),
    conda:
        "../envs/probe.yaml"
    threads: job_threads("probe_layers_wide")
    resources:
        mem_mb=job_mem_mb("probe_layers_wide"),
        runtime=job_runtime("probe_layers_wide", times=len(LAYER_TASKS)),  # the entry's runtime per task
    params:
        **reads("numerics"),  # hearflow.core.numerics: the kernel and thread pins of the job
        **settings("probe.layers.engine", "probe.linear", "probe.device", "seed"),
        # the MLP grid matters to the native engine only
        **settings("probe.grid", "probe.max_grid_points", when={"probe.layers.engine": "native"}),
    script:
        "../scripts/probe_layers_wide.py"


rule probe_layers_all:
    input:
        layer_probe_scores(),
