import os
import re
import sys
from pathlib import Path

from hearflow.workflow.config import make_plan, validate_params, wide_embeds, wide_probes
from hearflow.data.archives import archive_name, archive_url
from hearflow.workflow.dvcgen import settle_mtimes
from hearflow.core.hear import ARCHIVE_RATE
from hearflow.workflow.targets import task_facts
from hearflow.workflow.rules import rule_settings
from hearflow.workflow.targets import (
    archive_file,
    config_dir,
    layer_probe_pairs,
    layer_scores_file,
    member_dir,
    mirror_archive,
    report_figures,
    scores_file,
    standin_dir,
    task_dir,
)
from hearflow.workflow.targets import layer_probe_scores as target_layer_probe_scores
from hearflow.workflow.targets import report_outputs as target_report_outputs
from hearflow.core import numerics
from hearflow.workflow import resources as res

validate_params(config)
PLAN = make_plan(config)
# Results from `dvc pull` in a fresh clone: put file ages in DAG order once, before Snakemake
# has recorded any job here, so that plain Snakemake agrees with DVC (hearflow.workflow.dvcgen).
if workflow.is_main_process:
    settle_mtimes(Path.cwd())
LOCAL_MIRROR = "://" not in PLAN.mirror
# hear2021-sim: download jobs fetch the local mirror folder over HTTP (hearflow.data.mirror)
SERVE_MIRROR = LOCAL_MIRROR and bool(config["suites"][PLAN.suite].get("serve", False))
# Sample rates whose archives the suite's mirror has (suites.<suite>.archive_rates; 48 kHz,
# the public one, always): a task folder at such a rate comes from its own archive (download,
# extract); the other rates the models need are resampled from the 48 kHz folder.
ARCHIVE_RATES = tuple(sorted(set(config["suites"][PLAN.suite].get("archive_rates", [ARCHIVE_RATE]))))
RESAMPLED_RATES = tuple(r for r in PLAN.rates if r not in ARCHIVE_RATES)
if PLAN.suite in ("demo", "hear2021-sim", "recordings") and ARCHIVE_RATES != (ARCHIVE_RATE,):
    raise ValueError(
        f"params: suites.{PLAN.suite}.archive_rates: {list(ARCHIVE_RATES)}; the {PLAN.suite} suite synthesises "
        f"{ARCHIVE_RATE} Hz archives only, so it must be [{ARCHIVE_RATE}]"
    )
# The suite's probe jobs: one per configuration over every task (rule probe_wide), or one
# per (configuration, task) (rule probe); suites.<suite>.probe_jobs, rules/probe.smk.
WIDE_PROBES = wide_probes(config)
# The suite's embedding jobs: one per model over every task (rule embed_wide), or one per
# (model, task) (rule embed); suites.<suite>.embed_jobs, rules/embed.smk.
WIDE_EMBEDS = wide_embeds(config)
PYTHON = sys.executable  # the interpreter running Snakemake (shell rules call it)
# Jobs import hearflow from this checkout, whichever environment (--sdm conda) runs them.
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (f"{workflow.basedir}/src", os.environ.get("PYTHONPATH")) if p)


# Reproducible numerics (hearflow.core.numerics): the kernel and thread pins go into this
# process's environment before any job starts, so every job's libraries load with them;
# envvars hands them to Slurm jobs too.
NUMERICS = numerics.settings(config.get("numerics"))
NUMERICS_ENV = numerics.apply(NUMERICS)
# Idle OpenMP threads sleep instead of spinning (GNU OpenMP, torch's, spins by default).
# Jobs compute with numerics.threads threads whatever cores they reserve, so a 2-core machine
# runs two 2-thread jobs at once, and spinning threads take the cores the other job's threads
# wait for: two CREPE tiny embeddings side by side took 18.3 s each, with sleeping threads
# 7.9 and 9.2 s; alone, 4.7 s either way; the bytes are the same (scheduling, not arithmetic;
# docs/numerics.md). A value set in the caller's environment is kept.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# Which ready job runs first when cores are short (Snakemake's `priority:`; higher first,
# default 0): the data phase, then the embeddings (the longest jobs, and what every later
# job waits for), then the t-SNE figure (it reads member embeddings only, and is the longest
# report job), then ensembles, probes and the report in the order they become ready. Order
# only: no output depends on it. It does not stop a 2-thread job (resample, the logmel
# embedding, t-SNE: resources in params.yaml) from waiting on 2 cores while 1-thread jobs
# keep one core busy: in the demo's main job the 32 kHz resampling still ran late (issue 30).
PRIORITY = {"data": 3, "embed": 2, "tsne": 1}


envvars:
    "PYTHONPATH",
    *sorted(NUMERICS_ENV),


def _one_of(names):
    """A wildcard pattern matching exactly `names` (none: a pattern that matches nothing)."""
    return "|".join(re.escape(str(n)) for n in sorted(names, key=str)) or "(?!)"


wildcard_constraints:
    task=_one_of(PLAN.tasks),
    model=_one_of(PLAN.models),
    cfg=_one_of(PLAN.configs),
    rate=_one_of(RESAMPLED_RATES),
    arate=_one_of(ARCHIVE_RATES),
    table=_one_of(PLAN.tables),


def settings(*keys, when=None, **named):
    """A rule's params from params.yaml keys, as the active suite sees them (its overrides
    applied): `**settings("probe.grid")` passes `grid`, `**settings(spec="models.{model}.standin")`
    passes `spec`, per job. These keys are the rule's DVC params (hearflow.workflow.rules reads them from
    the rule's entry); with `when={key: value}` they count, and are passed, only while key has
    that value (None otherwise)."""
    return rule_settings(config, keys, named, when)


def reads(*keys, when=None):
    """Declares the params.yaml keys a rule's other params are derived from (its DVC params,
    like those of `settings`); passes nothing. "*": every key."""
    return rule_settings(config, keys, {}, when, declare_only=True)


def layer_probe_scores():
    """Every layer-wise probe's scores: each per-layer member (ModelSpec.per_layer) on each
    scene task (rule probe_layers)."""
    return target_layer_probe_scores(PLAN)


def final_outputs():
    """Every target of the active suite: probe scores, layer-wise probe scores and the report
    (metrics, tables, figures, plot data, report.html; report_outputs() in rules/report.smk).

    The scores are targets too: reports/ is committed, so a fresh clone has the reports
    but not the results behind them, and must still plan the whole DAG."""
    scores = [scores_file(cfg, task) for cfg in PLAN.configs for task in PLAN.tasks]
    scores += layer_probe_scores()
    return scores + report_outputs() + ["reports/plots/scores.csv"]


def lock_key(wildcards):
    """Checksum-lock entry of an archive: its name; demo archives also depend on the
    parameters they are synthesised from, so a changed seed or scale gets its own entry."""
    name = archive_name(wildcards.task, int(wildcards.arate))
    if PLAN.suite == "demo":
        return f"{name} (seed={config['seed']}, scale={config['demo']['scale']})"
    if PLAN.suite == "hear2021-sim":
        sim = config["suites"][PLAN.suite]
        return (
            f"{name} (seed={config['seed']}, scale={sim['scale']}, min_clips={sim.get('min_clips', 4)}, "
            f"max_seconds={sim.get('max_seconds')})"
        )
    if PLAN.suite == "recordings":
        # built from installed Debian packages: a new version of one adds entries, not a mismatch
        from hearflow.data.recordings import lock_key as recordings_key

        return recordings_key(wildcards.task, name)
    return name


def sim_metadata(task):
    """The real task_metadata.json a hear2021-sim task is built around (hearflow.data.sim)."""
    return f"tests/fixtures/hear2021/{task}/task_metadata.json"


def published_md5(wildcards):
    """The catalog's published md5 (Beehive's): it is the 48 kHz archive's (not the
    synthesised stand-in's of hear2021-sim, checked against its own lock only)."""
    if int(wildcards.arate) != ARCHIVE_RATE or PLAN.suite == "hear2021-sim":
        return None
    return PLAN.catalog.get(wildcards.task, {}).get("md5")


def mirror_file(wildcards):
    """A local mirror's archive is an input of its download (the demo mirror is built first)."""
    return [mirror_archive(PLAN.mirror, wildcards.task, wildcards.arate)] if LOCAL_MIRROR else []


def load_options(model):
    """load_model options; a stand-in's checkpoint is the folder rule `standin` writes."""
    spec = PLAN.models[model]
    if "standin" in spec:
        return dict(spec["options"], checkpoint=standin_dir(model), stand_in=True)
    return dict(spec["options"])


# Report phase: what the figures draw (hearflow.workflow.targets, shared with the dvc.yaml generator).
TASK_FACTS = task_facts(PLAN.catalog, list(PLAN.tasks))
REPORT = report_figures(config, PLAN)
TSNE_MODELS = REPORT["tsne_models"]
TSNE_TASKS = REPORT["tsne_tasks"]
ABLATIONS = REPORT["ablations"]


def layer_curve_scores():
    """The layer-wise probe scores the layer-curve figure and report.html draw: all of
    layer_probe_scores() with report.figures.layer_curves on, none with it off."""
    return REPORT["layer_curve_scores"]


def all_scores():
    return [scores_file(cfg, task) for cfg in PLAN.configs for task in PLAN.tasks]


def figure_names():
    """The figures this run can draw (t-SNE needs a model of report.figures.tsne.models, etc.)."""
    return REPORT["names"]


def report_outputs():
    """Every report file except the DVC score plot (rule score_plot)."""
    outs = target_report_outputs(PLAN, REPORT["names"])
    return outs["metrics"] + outs["tables"] + outs["figures"] + outs["plots"][:-1] + outs["html"]


# Cluster requests (params.yaml `resources`; profiles/slurm turns them into sbatch flags).
def embed_request(model):
    return res.request(config["resources"]["embed"], model)


def embed_threads(wildcards):
    return embed_request(wildcards.model)["threads"]


def embed_mem_mb(wildcards, attempt):
    return res.mem_mb(embed_request(wildcards.model), attempt)


def embed_runtime(wildcards, input, attempt):
    """Minutes for the audio of the job's task, or of every task for a wide job (embed_wide)."""
    spec = embed_request(wildcards.model)
    seconds = (
        sum(res.audio_seconds(t) for t in input.tasks) if "tasks" in input.keys() else res.audio_seconds(input.task)
    )
    return res.runtime_minutes(spec, seconds, attempt, config["resources"]["min_runtime"])


def job_threads(rule_name):
    """Threads of a CPU-only rule's jobs (`threads` in resources.jobs; default 1)."""
    return int(res.request(config["resources"]["jobs"], rule_name).get("threads", 1))


def job_mem_mb(rule_name):
    """Memory of a CPU-only rule's jobs, grown with the attempt."""

    def mem_mb(wildcards, attempt):
        return res.mem_mb(res.request(config["resources"]["jobs"], rule_name), attempt)

    return mem_mb


def job_runtime(rule_name, audio_input=None, times=1):
    """Runtime of a CPU-only rule's jobs; from the audio of input `audio_input` if named;
    `times` the rule's runtime for a job doing that many of its jobs' work (a wide job)."""
    min_runtime = config["resources"]["min_runtime"]

    def fixed(wildcards, attempt):
        spec = res.request(config["resources"]["jobs"], rule_name)
        return times * res.runtime_minutes(spec, None, attempt, min_runtime)

    def from_audio(wildcards, input, attempt):
        spec = res.request(config["resources"]["jobs"], rule_name)
        return res.runtime_minutes(spec, res.audio_seconds(input[audio_input]), attempt, min_runtime)

    return fixed if audio_input is None else from_audio


def report_item(path, caption, subcategory, **labels):
    """An output of the report phase (rules/report.smk) in `snakemake --report`: category
    "5. Report", its caption rules/captions/<caption>.rst, one subcategory per table or figure."""
    return report(path, caption=f"captions/{caption}.rst", category="5. Report", subcategory=subcategory, labels=labels)
