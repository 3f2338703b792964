import os
import re

from hearflow.config import make_plan, validate_params
from hearflow.data import archive_name, archive_url

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


def layer_scores_file(model, task):
    return f"results/probe_layers/{model}/{task}/scores.json"


def layer_scores_files():
    """Layer-wise probes: every SSL member (module ssl) on every scene task (the tasks with
    per-layer views), whose type the catalog or the demo suite knows before any data exists."""
    from hearflow.demo import embedding_type

    def is_scene(task):
        facts = PLAN.catalog.get(task)
        return (facts["embedding_type"] if facts else embedding_type(task)) == "scene"

    models = [m for m, spec in PLAN.models.items() if spec["module"] == "ssl"]
    return [layer_scores_file(m, t) for m in models for t in PLAN.tasks if is_scene(t)]


def final_outputs():
    """Every target of the active suite: probe scores, layer-wise probe scores, metrics, one
    table per ablation group.

    The scores are targets too: reports/ is committed, so a fresh clone has the reports
    but not the results behind them, and must still plan the whole DAG."""
    scores = [scores_file(cfg, task) for cfg in PLAN.configs for task in PLAN.tasks]
    scores += layer_scores_files()
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
