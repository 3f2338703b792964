# Data phase: (demo / hear2021-sim synthesis, recordings from Debian packages) -> download + verify -> extract -> resample. A rate listed in
# suites.<suite>.archive_rates is downloaded and extracted from its own archive instead of
# being resampled (wildcard `arate`: archive rates; `rate`: rates resampled from 48 kHz).
if PLAN.suite == "demo":

    rule demo_archive:
        output:
            mirror_archive(PLAN.mirror, "{task}"),
        log:
            "logs/demo_archive/{task}.log",
        priority: PRIORITY["data"]
        conda:
            "../envs/data.yaml"
        threads: job_threads("demo_archive")
        resources:
            mem_mb=job_mem_mb("demo_archive"),
            runtime=job_runtime("demo_archive"),
        params:
            **settings("seed", "demo.scale"),
        script:
            "../scripts/demo_archive.py"


if PLAN.suite == "hear2021-sim":

    rule sim_archive:
        input:
            catalog=config["suites"][PLAN.suite]["catalog"],
            metadata=sim_metadata("{task}"),
        output:
            mirror_archive(PLAN.mirror, "{task}"),
        log:
            "logs/sim_archive/{task}.log",
        priority: PRIORITY["data"]
        conda:
            "../envs/data.yaml"
        threads: job_threads("sim_archive")
        resources:
            mem_mb=job_mem_mb("sim_archive"),
            runtime=job_runtime("sim_archive"),
        params:
            **settings("seed", "suites.{suite}.scale", "suites.{suite}.min_clips", "suites.{suite}.max_seconds"),
        script:
            "../scripts/sim_archive.py"


if PLAN.suite == "recordings":

    rule recordings_archive:
        output:
            mirror_archive(PLAN.mirror, "{task}"),
        log:
            "logs/recordings_archive/{task}.log",
        priority: PRIORITY["data"]
        conda:
            "../envs/data.yaml"
        threads: job_threads("recordings_archive")
        resources:
            mem_mb=job_mem_mb("recordings_archive"),
            runtime=job_runtime("recordings_archive"),
        script:
            "../scripts/recordings_archive.py"


rule download:
    input:
        mirror_file,
    output:
        archive_file("{task}", "{arate}"),
    log:
        "logs/download/{arate}/{task}.log",
    priority: PRIORITY["data"]
    retries: 2
    conda:
        "../envs/data.yaml"
    threads: job_threads("download")
    resources:
        mem_mb=job_mem_mb("download"),
        runtime=job_runtime("download"),
    params:
        **reads("suites.{suite}.serve", when={"suite": "hear2021-sim"}),
        # which archives the mirror has, where; a demo archive's lock entry names its seed and scale
        **reads("suites.{suite}.archive_rates", "suites.{suite}.mirror", "suites.{suite}.catalog"),
        **reads("seed", "demo.scale", when={"suite": "demo"}),
        **reads(
            "seed",
            "suites.{suite}.scale",
            "suites.{suite}.min_clips",
            "suites.{suite}.max_seconds",
            when={"suite": "hear2021-sim"},
        ),
        url=lambda w: archive_url(PLAN.mirror, w.task, int(w.arate)),
        # a mirror folder served over HTTP from 127.0.0.1 by the job itself (hearflow.data.mirror)
        serve=PLAN.mirror if SERVE_MIRROR else None,
        lock=PLAN.checksums,
        lock_key=lock_key,
        md5=published_md5,
    script:
        "../scripts/download.py"


rule extract:
    input:
        archive_file("{task}", "{arate}"),
    output:
        report(
            directory(task_dir("{arate}", "{task}")),
            patterns=["{name,task_metadata}.json"],
            caption="captions/task_metadata.rst",
            category="1. Data",
            subcategory="{task}",
            labels={"task": "{task}", "rate": "{arate} Hz"},
        ),
    log:
        "logs/extract/{arate}/{task}.log",
    priority: PRIORITY["data"]
    conda:
        "../envs/data.yaml"
    threads: job_threads("extract")
    resources:
        mem_mb=job_mem_mb("extract"),
        runtime=job_runtime("extract", 0),
    params:
        **reads("suites.{suite}.max_clips_per_split", "seed"),
        # the 48 kHz folder is the resampling source and stays whole (resample caps); a
        # folder taken from its own archive keeps the subset resampling would keep
        max_clips_per_split=lambda w: None if int(w.arate) == ARCHIVE_RATE else PLAN.max_clips_per_split,
        seed=lambda w: None if int(w.arate) == ARCHIVE_RATE else config["seed"],
    script:
        "../scripts/extract.py"


rule resample:
    input:
        task_dir(ARCHIVE_RATE, "{task}"),
    output:
        directory(task_dir("{rate}", "{task}")),
    log:
        "logs/resample/{rate}/{task}.log",
    priority: PRIORITY["data"]
    conda:
        "../envs/data.yaml"
    threads: job_threads("resample")
    resources:
        mem_mb=job_mem_mb("resample"),
        runtime=job_runtime("resample", 0),
    params:
        **settings("suites.{suite}.max_clips_per_split", "seed"),
    script:
        "../scripts/resample.py"


rule data_all:
    input:
        [task_dir(rate, task) for rate in PLAN.rates for task in PLAN.tasks],
