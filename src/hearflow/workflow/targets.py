"""Where every phase writes (the path templates) and what a plan produces: shared by the rule
files and the dvc.yaml generator, so the two cannot disagree. Parse-time safe (no heavy imports).

Each template takes values or wildcard patterns: `member_dir("{model}", "{task}")` is the
output pattern of rule embed, `member_dir("crepe_tiny", "demo_tones-v1-full")` one job's.
"""

from __future__ import annotations

from hearflow.core.hear import ARCHIVE_RATE
from hearflow.data.archives import archive_name
from hearflow.embed.models import model_spec
from hearflow.workflow.config import Plan

# Suites whose archives a rule synthesises into the mirror folder before the download rule
# fetches them: {suite: that rule} (rules/data.smk).
SYNTH_RULES = {"demo": "demo_archive", "hear2021-sim": "sim_archive", "recordings": "recordings_archive"}


def task_facts(catalog: dict[str, dict], tasks: list[str]) -> dict[str, dict]:
    """{task: {category, embedding_type, evaluation}}: from the suite's catalog (hear2021) or,
    for the demo tasks, from hearflow.data.demo. Parse-time safe (no heavy imports)."""
    out = {}
    for task in tasks:
        if task in catalog:
            facts = catalog[task]
        else:
            from hearflow.data import demo

            facts = demo.task_facts(task)
        out[task] = {k: facts[k] for k in ("category", "embedding_type", "evaluation")}
    return out


def mirror_archive(mirror: str, task: str, rate: int | str = ARCHIVE_RATE) -> str:
    """A task archive in a suite's local mirror folder (the demo suite synthesises them there)."""
    return f"{mirror}/{archive_name(task, rate)}"


def archive_file(task: str, rate: int | str = ARCHIVE_RATE) -> str:
    """A downloaded, verified task archive."""
    return f"data/archives/{archive_name(task, rate)}"


def task_dir(rate: int | str, task: str) -> str:
    """A HEAR task directory with its audio at `rate` Hz."""
    return f"data/tasks/{rate}/{task}"


def standin_dir(model: str) -> str:
    """A stand-in model's seeded random checkpoint."""
    return f"data/models/{model}"


def member_dir(model: str, task: str) -> str:
    """One model's embeddings of one task, every view (hearflow.embed.job)."""
    return f"results/members/{model}/{task}"


def config_dir(cfg: str, task: str) -> str:
    """One configuration's embeddings of one task (hearflow.ensemble.derive)."""
    return f"results/configs/{cfg}/{task}"


def scores_file(cfg: str, task: str) -> str:
    return f"results/probe/{cfg}/{task}/scores.json"


def layer_scores_file(model: str, task: str) -> str:
    return f"results/probe_layers/{model}/{task}/scores.json"


def layer_probe_pairs(plan: Plan) -> list[tuple[str, str]]:
    """(model, task) of the layer-wise probes: every member whose module has per-layer views
    (`ModelSpec.per_layer`) on every scene task, whose type the catalog or the demo suite knows
    before any data."""
    facts = task_facts(plan.catalog, list(plan.tasks))
    models = [m for m, spec in plan.models.items() if model_spec(spec["module"]).per_layer]
    return [(m, t) for m in models for t in plan.tasks if facts[t]["embedding_type"] == "scene"]


def layer_probe_scores(plan: Plan) -> list[str]:
    """The scores of every layer-wise probe of the plan (rule probe_layers)."""
    return [layer_scores_file(m, t) for m, t in layer_probe_pairs(plan)]


def report_figures(params: dict, plan: Plan) -> dict:
    """The figures this run can draw and what they draw from (params `report.figures`);
    `layer_curve_scores`: the layer-wise scores the layer-curve figure draws (none when
    `report.figures.layer_curves` is off)."""
    figures = params["report"]["figures"]
    subs = params["suites"][plan.suite]["substitutes"]
    tsne_models = list(
        dict.fromkeys(subs.get(m, m) for m in figures["tsne"]["models"] if subs.get(m, m) in plan.models)
    )
    tsne_tasks = [t for t in plan.tasks if t not in figures["tsne"]["exclude_tasks"]]
    ablations = [p for p in figures["ablations"] if all(c in plan.configs for c in p)]
    layers = layer_probe_scores(plan) if figures["layer_curves"] else []
    names = ["scores_by_category"]
    if ablations:
        names.append("ablation_deltas")
    if tsne_models and tsne_tasks:
        names.append("tsne_fusion")
    if layers:
        names.append("layer_curves")
    return {
        "tsne_models": tsne_models,
        "tsne_tasks": tsne_tasks,
        "ablations": ablations,
        "layer_curve_scores": layers,
        "names": names,
    }


def report_outputs(plan: Plan, figure_names: list[str]) -> dict[str, list[str]]:
    """Every file of the report phase, by kind (metrics, tables, figures, plots, html)."""
    return {
        "metrics": ["reports/metrics.json", "reports/metrics_ci.json"],
        "tables": [f"reports/tables/{t}.{ext}" for t in plan.tables for ext in ("md", "csv", "tex")],
        "figures": [f"reports/figures/{f}.{ext}" for f in figure_names for ext in ("png", "pdf", "txt")],
        "plots": [f"reports/plots/{f}.csv" for f in figure_names] + ["reports/plots/scores.csv"],
        "html": ["reports/report.html"],
    }
