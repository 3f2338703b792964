"""What the report and the layer-wise probes of a plan produce: shared by rules/common.smk
and the dvc.yaml generator, so the two cannot disagree. Parse-time safe (no heavy imports)."""

from __future__ import annotations

from hearflow.config import Plan
from hearflow.models import model_spec
from hearflow.report import task_facts


def layer_scores_file(model: str, task: str) -> str:
    return f"results/probe_layers/{model}/{task}/scores.json"


def layer_probe_pairs(plan: Plan) -> list[tuple[str, str]]:
    """(model, task) of the layer-wise probes: every member whose module has per-layer views
    (`ModelSpec.per_layer`) on every scene task, whose type the catalog or the demo suite knows
    before any data."""
    facts = task_facts(plan.catalog, list(plan.tasks))
    models = [m for m, spec in plan.models.items() if model_spec(spec["module"]).per_layer]
    return [(m, t) for m in models for t in plan.tasks if facts[t]["embedding_type"] == "scene"]


def report_figures(params: dict, plan: Plan) -> dict:
    """The figures this run can draw and what they draw from (params `report.figures`)."""
    figures = params["report"]["figures"]
    subs = params["suites"][plan.suite]["substitutes"]
    tsne_models = list(dict.fromkeys(subs.get(m, m) for m in figures["tsne"]["models"] if subs.get(m, m) in plan.models))
    tsne_tasks = [t for t in plan.tasks if t not in figures["tsne"]["exclude_tasks"]]
    ablations = [p for p in figures["ablations"] if all(c in plan.configs for c in p)]
    layers = [layer_scores_file(m, t) for m, t in layer_probe_pairs(plan)] if figures["layer_curves"] else []
    names = ["scores_by_category"]
    if ablations:
        names.append("ablation_deltas")
    if tsne_models and tsne_tasks:
        names.append("tsne_fusion")
    if layers:
        names.append("layer_curves")
    return {"tsne_models": tsne_models, "tsne_tasks": tsne_tasks, "ablations": ablations,
            "layer_files": layers, "names": names}


def report_outputs(plan: Plan, figure_names: list[str]) -> dict[str, list[str]]:
    """Every file of the report phase, by kind (metrics, tables, figures, plots, html)."""
    return {
        "metrics": ["reports/metrics.json"],
        "tables": [f"reports/tables/{t}.{ext}" for t in plan.tables for ext in ("md", "csv", "tex")],
        "figures": [f"reports/figures/{f}.{ext}" for f in figure_names for ext in ("png", "pdf", "txt")],
        "plots": [f"reports/plots/{f}.csv" for f in figure_names] + ["reports/plots/scores.csv"],
        "html": ["reports/report.html"],
    }
