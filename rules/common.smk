import os
import re

from hearflow.config import make_plan, validate_params
from hearflow.data import archive_name, archive_url
from hearflow import resources as res

validate_params(config)
PLAN = make_plan(config)
LOCAL_MIRROR = "://" not in PLAN.mirror
# Jobs import hearflow from this checkout, whichever environment (--sdm conda) runs them.
os.environ["PYTHONPATH"] = os.pathsep.join(
    p for p in (f"{workflow.basedir}/src", os.environ.get("PYTHONPATH")) if p
)


envvars:
    "PYTHONPATH",


def _one_of(names):
    return "|".join(re.escape(str(n)) for n in sorted(names, key=str))


wildcard_constraints:
    task=_one_of(PLAN.tasks),
    model=_one_of(PLAN.models),
    cfg=_one_of(PLAN.configs),
    rate=_one_of(r for r in PLAN.rates if r != 48000),
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


def final_outputs():
    """Every target of the active suite: probe scores, metrics, one table per ablation group.

    The scores are targets too: reports/ is committed, so a fresh clone has the reports
    but not the results behind them, and must still plan the whole DAG."""
    scores = [scores_file(cfg, task) for cfg in PLAN.configs for task in PLAN.tasks]
    return scores + ["reports/metrics.json"] + [f"reports/tables/{t}.md" for t in PLAN.tables]


def lock_key(wildcards):
    """Checksum-lock entry of an archive: its name; demo archives also depend on the
    parameters they are synthesised from, so a changed seed or scale gets its own entry."""
    name = archive_name(wildcards.task)
    if PLAN.suite == "demo":
        return f"{name} (seed={config['seed']}, scale={config['demo']['scale']})"
    return name


def mirror_file(wildcards):
    """A local mirror's archive is an input of its download (the demo mirror is built first)."""
    return [f"{PLAN.mirror}/{archive_name(wildcards.task)}"] if LOCAL_MIRROR else []


def standin_dir(model):
    return f"data/models/{model}"


def load_options(model):
    """load_model options; a stand-in's checkpoint is the folder rule `standin` writes."""
    spec = PLAN.models[model]
    if "standin" in spec:
        return dict(spec["options"], checkpoint=standin_dir(model), stand_in=True)
    return dict(spec["options"])


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
