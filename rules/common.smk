import os
import re
from pathlib import Path

from hearflow.config import make_plan, validate_params
from hearflow.data import archive_name, archive_url
from hearflow.dvcgen import settle_mtimes

validate_params(config)
PLAN = make_plan(config)
# Results from `dvc pull` in a fresh clone: put file ages in DAG order once, before Snakemake
# has recorded any job here, so that plain Snakemake agrees with DVC (hearflow.dvcgen).
if workflow.is_main_process:
    settle_mtimes(Path.cwd())
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
    reports = ["reports/metrics.json", "reports/plots/scores.csv"]
    return scores + reports + [f"reports/tables/{t}.md" for t in PLAN.tables]


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
