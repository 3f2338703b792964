# Data phase: (demo synthesis) -> download + verify -> extract -> resample.
if PLAN.suite == "demo":

    rule demo_archive:
        output:
            f"{PLAN.mirror}/hear2021-{{task}}-48000.tar.gz",
        params:
            seed=config["seed"],
            scale=config["demo"]["scale"],
        resources:
            mem_mb=job_mem_mb("demo_archive"),
            runtime=job_runtime("demo_archive"),
        log:
            "logs/demo_archive/{task}.log",
        conda:
            "../envs/data.yaml"
        script:
            "../scripts/demo_archive.py"


rule download:
    input:
        mirror_file,
    output:
        "data/archives/hear2021-{task}-48000.tar.gz",
    params:
        url=lambda w: archive_url(PLAN.mirror, w.task),
        lock=PLAN.checksums,
        lock_key=lock_key,
        md5=lambda w: PLAN.catalog.get(w.task, {}).get("md5"),
    resources:
        mem_mb=job_mem_mb("download"),
        runtime=job_runtime("download"),
    log:
        "logs/download/{task}.log",
    retries: 2
    conda:
        "../envs/data.yaml"
    script:
        "../scripts/download.py"


rule extract:
    input:
        "data/archives/hear2021-{task}-48000.tar.gz",
    output:
        directory("data/tasks/48000/{task}"),
    resources:
        mem_mb=job_mem_mb("extract"),
        runtime=job_runtime("extract", 0),
    log:
        "logs/extract/{task}.log",
    conda:
        "../envs/data.yaml"
    script:
        "../scripts/extract.py"


rule resample:
    input:
        "data/tasks/48000/{task}",
    output:
        directory("data/tasks/{rate}/{task}"),
    params:
        max_clips_per_split=PLAN.max_clips_per_split,
        seed=config["seed"],
    threads: 2
    resources:
        mem_mb=job_mem_mb("resample"),
        runtime=job_runtime("resample", 0),
    log:
        "logs/resample/{rate}/{task}.log",
    conda:
        "../envs/data.yaml"
    script:
        "../scripts/resample.py"


rule data_all:
    input:
        [task_dir(rate, task) for rate in PLAN.rates for task in PLAN.tasks],
