import os
import re
from pathlib import Path

from hearflow.config import make_plan, validate_params
from hearflow.data import ARCHIVE_RATE, archive_name, archive_url
from hearflow.report import task_facts
from hearflow.dvcgen import settle_mtimes
from hearflow.targets import layer_probe_pairs, layer_scores_file, report_figures
from hearflow.targets import report_outputs as target_report_outputs
from hearflow import numerics
from hearflow import resources as res

validate_params(config)
PLAN = make_plan(config)
# Results from `dvc pull` in a fresh clone: put file ages in DAG order once, before Snakemake
# has recorded any job here, so that plain Snakemake agrees with DVC (hearflow.dvcgen).
if workflow.is_main_process:
    settle_mtimes(Path.cwd())
LOCAL_MIRROR = "://" not in PLAN.mirror
# Sample rates whose archives the suite's mirror has (suites.<suite>.archive_rates; 48 kHz,
# the public one, always): a task folder at such a rate comes from its own archive (download,
# extract); the other rates the models need are resampled from the 48 kHz folder.
ARCHIVE_RATES = tuple(sorted(set(config["suites"][PLAN.suite].get("archive_rates", [ARCHIVE_RATE]))))
RESAMPLED_RATES = tuple(r for r in PLAN.rates if r not in ARCHIVE_RATES)
if PLAN.suite == "demo" and ARCHIVE_RATES != (ARCHIVE_RATE,):
    raise ValueError(
        f"params: suites.demo.archive_rates: {list(ARCHIVE_RATES)}; the demo suite synthesises "
        f"{ARCHIVE_RATE} Hz archives only (rule demo_archive), so it must be [{ARCHIVE_RATE}]"
    )
# Jobs import hearflow from this checkout, whichever environment (--sdm conda) runs them.
os.environ["PYTHONPATH"] = os.pathsep.join(
    p for p in (f"{workflow.basedir}/src", os.environ.get("PYTHONPATH")) if p
)


# Reproducible numerics (hearflow.numerics): the kernel and thread pins go into this
# process's environment before any job starts, so every job's libraries load with them;
# envvars hands them to Slurm jobs too.
NUMERICS = numerics.settings(config.get("numerics"))
NUMERICS_ENV = numerics.apply(NUMERICS)


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


def task_dir(rate, task):
    """A HEAR task directory with its audio at `rate` Hz."""
    return f"data/tasks/{rate}/{task}"


def member_dir(model, task):
    return f"results/members/{model}/{task}"


def config_dir(cfg, task):
    return f"results/configs/{cfg}/{task}"


def scores_file(cfg, task):
    return f"results/probe/{cfg}/{task}/scores.json"


def layer_scores_files():
    """Layer-wise probes: every SSL member (module ssl) on every scene task."""
    return [layer_scores_file(m, t) for m, t in layer_probe_pairs(PLAN)]


def final_outputs():
    """Every target of the active suite: probe scores, layer-wise probe scores and the report
    (metrics, tables, figures, plot data, report.html; report_outputs() in rules/report.smk).

    The scores are targets too: reports/ is committed, so a fresh clone has the reports
    but not the results behind them, and must still plan the whole DAG."""
    scores = [scores_file(cfg, task) for cfg in PLAN.configs for task in PLAN.tasks]
    scores += layer_scores_files()
    return scores + report_outputs() + ["reports/plots/scores.csv"]


def lock_key(wildcards):
    """Checksum-lock entry of an archive: its name; demo archives also depend on the
    parameters they are synthesised from, so a changed seed or scale gets its own entry."""
    name = archive_name(wildcards.task, int(wildcards.arate))
    if PLAN.suite == "demo":
        return f"{name} (seed={config['seed']}, scale={config['demo']['scale']})"
    return name


def published_md5(wildcards):
    """The catalog's published md5 (Beehive's): it is the 48 kHz archive's."""
    if int(wildcards.arate) != ARCHIVE_RATE:
        return None
    return PLAN.catalog.get(wildcards.task, {}).get("md5")


def mirror_file(wildcards):
    """A local mirror's archive is an input of its download (the demo mirror is built first)."""
    return [f"{PLAN.mirror}/{archive_name(wildcards.task, int(wildcards.arate))}"] if LOCAL_MIRROR else []



def standin_dir(model):
    return f"data/models/{model}"


def load_options(model):
    """load_model options; a stand-in's checkpoint is the folder rule `standin` writes."""
    spec = PLAN.models[model]
    if "standin" in spec:
        return dict(spec["options"], checkpoint=standin_dir(model), stand_in=True)
    return dict(spec["options"])


# Report phase: what the figures draw (hearflow.targets, shared with the dvc.yaml generator).
TASK_FACTS = task_facts(PLAN.catalog, list(PLAN.tasks))
FIGURES = config["report"]["figures"]
REPORT = report_figures(config, PLAN)
TSNE_MODELS = REPORT["tsne_models"]
TSNE_TASKS = REPORT["tsne_tasks"]
ABLATIONS = REPORT["ablations"]


def layer_score_files():
    """The layer-wise probe scores the layer-curve figure draws (report.figures.layer_curves)."""
    return REPORT["layer_files"]


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
    spec = embed_request(wildcards.model)
    return res.runtime_minutes(spec, res.audio_seconds(input.task), attempt, config["resources"]["min_runtime"])


def job_threads(rule_name):
    """Threads of a CPU-only rule's jobs (`threads` in resources.jobs; default 1)."""
    return int(res.request(config["resources"]["jobs"], rule_name).get("threads", 1))


def job_mem_mb(rule_name):
    """Memory of a CPU-only rule's jobs, grown with the attempt."""

    def mem_mb(wildcards, attempt):
        return res.mem_mb(res.request(config["resources"]["jobs"], rule_name), attempt)

    return mem_mb


def job_runtime(rule_name, audio_input=None):
    """Runtime of a CPU-only rule's jobs; from the audio of input `audio_input` if named."""
    min_runtime = config["resources"]["min_runtime"]

    def fixed(wildcards, attempt):
        return res.runtime_minutes(res.request(config["resources"]["jobs"], rule_name), None, attempt, min_runtime)

    def from_audio(wildcards, input, attempt):
        spec = res.request(config["resources"]["jobs"], rule_name)
        return res.runtime_minutes(spec, res.audio_seconds(input[audio_input]), attempt, min_runtime)

    return fixed if audio_input is None else from_audio
