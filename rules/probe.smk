# Probe phase: the HEAR downstream protocol per (configuration, task).


rule probe:
    input:
        "results/configs/{cfg}/{task}",
    output:
        "results/probe/{cfg}/{task}/scores.json",
    params:
        engine=PLAN.probe["engine"],
        grid=PLAN.probe["grid"],
        max_grid_points=PLAN.probe["max_grid_points"],
        seed=config["seed"],
    threads: 1
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
