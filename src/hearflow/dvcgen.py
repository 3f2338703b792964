"""dvc.yaml, generated from params.yaml: fine-grained DVC stages over the Snakemake DAG.

    python -m hearflow.dvcgen            # rewrite dvc.yaml from params.yaml
    python -m hearflow.dvcgen --check    # exit 1 if the committed dvc.yaml is out of date

One stage per task for the data phase (demo synthesis, download, extract, resample), one per
stand-in checkpoint, one per (model, task) embedding, one per configuration for ensembles and
probes, and one report stage. Every stage runs Snakemake on its own targets with only its own
rules allowed (`--allowed-rules`), so a stage can never rebuild another stage's outputs, and
without the mtime trigger (DVC has already decided by content that the stage must run). Stage
commands name no executor: `SNAKEMAKE_PROFILE=profiles/slurm dvc repro` keeps every hash.

Deps are exactly the upstream outputs plus the code the stage's rules run (their rule file,
`script:` adapters and the hearflow modules these import, found by parsing them); params are
exactly the keys those rules read, with a suite override listed instead of the key it
overrides. Which stages exist depends on `suite`, `suites.<suite>.{tasks,configs,substitutes,
overrides}`, `models` and `configs`: after changing those, regenerate (a test fails otherwise).
"""

from __future__ import annotations

import argparse
import ast
import os
import sys
import time
from pathlib import Path

import yaml

from hearflow.config import ROOT, Plan, load_params, make_plan
from hearflow.data import ARCHIVE_RATE, archive_name
from hearflow.targets import layer_probe_pairs, layer_scores_file, report_figures, report_outputs

SNAKEMAKE = "snakemake --rerun-triggers params input code software-env"
HEADER = (
    "# Generated from params.yaml by `python -m hearflow.dvcgen`: do not edit, regenerate.\n"
    "# Each stage runs Snakemake on its own targets with only its own rules, without the mtime\n"
    "# trigger and without executor flags: pick an executor with SNAKEMAKE_PROFILE\n"
    "# (e.g. `SNAKEMAKE_PROFILE=profiles/slurm dvc repro`); stage hashes stay the same.\n"
)
# The `script:` adapter of every rule that runs code (rules without one only aggregate).
RULE_SCRIPTS = {
    "demo_archive": "scripts/demo_archive.py",
    "download": "scripts/download.py",
    "extract": "scripts/extract.py",
    "resample": "scripts/resample.py",
    "standin": "scripts/standin.py",
    "embed": "scripts/embed.py",
    "ensemble": "scripts/ensemble.py",
    "probe": "scripts/probe.py",
    "metrics": "scripts/metrics.py",
    "table": "scripts/table.py",
    "score_plot": "scripts/score_plot.py",
    "probe_layers": "scripts/probe_layers.py",
    "figure_scores": "scripts/figure_scores.py",
    "figure_ablations": "scripts/figure_ablations.py",
    "figure_tsne": "scripts/figure_tsne.py",
    "figure_layers": "scripts/figure_layers.py",
    "report_html": "scripts/report_html.py",
}
RULE_FILES = {
    "demo_archive": "rules/data.smk",
    "download": "rules/data.smk",
    "extract": "rules/data.smk",
    "resample": "rules/data.smk",
    "standin": "rules/embed.smk",
    "embed": "rules/embed.smk",
    "ensemble": "rules/ensemble.smk",
    "probe": "rules/probe.smk",
    "metrics": "rules/report.smk",
    "table": "rules/report.smk",
    "score_plot": "rules/report.smk",
    "probe_layers": "rules/probe.smk",
    "figure_scores": "rules/report.smk",
    "figure_ablations": "rules/report.smk",
    "figure_tsne": "rules/report.smk",
    "figure_layers": "rules/report.smk",
    "report_html": "rules/report.smk",
}
SCORE_PLOT = "reports/plots/scores.csv"


# Output layout; the same paths as the helpers in rules/common.smk (a test compares the
# stages with the jobs of `snakemake -n`, so the two cannot drift apart).
def task_dir(rate: int, task: str) -> str:
    return f"data/tasks/{rate}/{task}"


def member_dir(model: str, task: str) -> str:
    return f"results/members/{model}/{task}"


def config_dir(cfg: str, task: str) -> str:
    return f"results/configs/{cfg}/{task}"


def scores_file(cfg: str, task: str) -> str:
    return f"results/probe/{cfg}/{task}/scores.json"


def standin_dir(model: str) -> str:
    return f"data/models/{model}"


def stage_name(*parts: str) -> str:
    """DVC stage names allow letters, digits, '_' and '-' only (task names hold dots)."""
    return "-".join(parts).replace(".", "_")


class _UniqueStages(dict):
    def __setitem__(self, name, stage):
        if name in self:  # two names that differ only in '.' vs '_'
            raise ValueError(f"two DVC stages named {name!r}")
        super().__setitem__(name, stage)


def _module_file(module: str, root: Path) -> Path | None:
    base = root / "src" / Path(*module.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def code_files(scripts: list[str], extra_modules: list[str] = (), root: Path = ROOT) -> list[str]:
    """The scripts plus every hearflow module they import, transitively (lazy imports too)."""
    todo = [root / s for s in scripts] + [_module_file(m, root) for m in extra_modules]
    seen: set[Path] = set()
    while todo:
        path = todo.pop()
        if path is None or path in seen:
            continue
        seen.add(path)
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            for name in names:
                if name == "hearflow" or name.startswith("hearflow."):
                    todo.append(_module_file(name, root))
    return sorted(p.relative_to(root).as_posix() for p in seen)


def setting_keys(params: dict, section: str, suite: str, keys: list[str] | None = None) -> list[str]:
    """Params keys behind a setting the suite may override (probe, ensemble, embed): each leaf
    as `<section>.<key>`, or as `suites.<suite>.overrides.<section>.<key>` where overridden."""
    overrides = params["suites"][suite]["overrides"].get(section, {})

    def walk(base: dict, over: dict, bpath: str, opath: str):
        for k, v in base.items():
            if isinstance(v, dict) and isinstance(over.get(k), dict):
                yield from walk(v, over[k], f"{bpath}.{k}", f"{opath}.{k}")
            elif k in over:
                yield f"{opath}.{k}"
            else:
                yield f"{bpath}.{k}"
        for k in over:
            if k not in base:
                yield f"{opath}.{k}"

    base = params[section]
    if keys is not None:
        base = {k: base[k] for k in keys if k in base}
        overrides = {k: overrides[k] for k in keys if k in overrides}
    return list(walk(base, overrides, section, f"suites.{suite}.overrides.{section}"))


def _stage(rules: list[str], targets: list[str], deps: list[str], params: list[str], *, root: Path,
           extra_modules: list[str] = (), outs=None, metrics=None, plots=None) -> dict:
    code = sorted({RULE_FILES[r] for r in rules}) + code_files(
        [RULE_SCRIPTS[r] for r in rules if r in RULE_SCRIPTS], extra_modules, root
    )
    stage = {
        "cmd": f"{SNAKEMAKE} --allowed-rules {' '.join(rules)} -- {' '.join(targets)}",
        "deps": list(deps) + code,
    }
    if params:
        stage["params"] = sorted(set(params))
    outs = outs if outs is not None else list(targets)
    if outs:
        stage["outs"] = outs
    if metrics:
        stage["metrics"] = metrics
    if plots:
        stage["plots"] = plots
    return stage


def stages(params: dict, root: Path = ROOT) -> dict[str, dict]:
    """The DVC stages of the active suite, in DAG order."""
    plan: Plan = make_plan(params)
    suite_key = f"suites.{plan.suite}"
    demo = plan.suite == "demo"
    out = _UniqueStages()

    archive_rates = sorted(set(params["suites"][plan.suite].get("archive_rates", [ARCHIVE_RATE])))
    resampled = [r for r in plan.rates if r not in archive_rates]
    # The 48 kHz folder: the resampling source (or a model's rate). Other rates of the suite's
    # archive_rates come from their own archives; the rest are resampled.
    direct = ([ARCHIVE_RATE] if resampled or ARCHIVE_RATE in plan.rates else [])
    direct += [r for r in plan.rates if r in archive_rates and r != ARCHIVE_RATE]
    for task in plan.tasks:
        rules = (["demo_archive"] if demo else []) + ["download", "extract"] + (["resample"] if resampled else [])
        targets = [f"{plan.mirror}/{archive_name(task)}"] if demo else []
        for rate in direct:
            targets += [f"data/archives/{archive_name(task, rate)}", task_dir(rate, task)]
        targets += [task_dir(r, task) for r in resampled]
        keys = [f"{suite_key}.mirror", f"{suite_key}.catalog", f"{suite_key}.max_clips_per_split", "seed"]
        keys += ["demo.scale"] if demo else []  # demo synthesis and its checksum-lock entry
        keys += [f"{suite_key}.archive_rates"] if archive_rates != [ARCHIVE_RATE] else []
        out[stage_name("data", task)] = _stage(rules, targets, [], keys, root=root)

    for model, spec in plan.models.items():
        if "standin" in spec:
            keys = [f"models.{model}.standin", "seed"]
            out[stage_name("standin", model)] = _stage(["standin"], [standin_dir(model)], [], keys, root=root)
    for model, spec in plan.models.items():
        keys = [f"models.{model}.module", f"models.{model}.options"] + setting_keys(params, "embed", plan.suite)
        keys += [f"models.{model}.standin"] if "standin" in spec else []
        upstream = [standin_dir(model)] if "standin" in spec else []
        for task in plan.tasks:
            out[stage_name("embed", model, task)] = _stage(
                ["embed"], [member_dir(model, task)], [task_dir(plan.rate(model), task)] + upstream, keys,
                root=root, extra_modules=[f"hearflow.models.{spec['module']}"],
            )

    subs = params["suites"][plan.suite]["substitutes"]
    for cfg, config in plan.configs.items():
        raw = params["configs"][cfg]
        keys = [f"configs.{cfg}"] + [f"{suite_key}.substitutes.{m['model']}" for m in raw["members"] if m["model"] in subs]
        if config.combine != "single" and "dim" not in raw:
            keys += setting_keys(params, "ensemble", plan.suite, ["dim"])
        members = sorted({m.model for m in config.members})
        deps = [member_dir(m, t) for m in members for t in plan.tasks]
        out[stage_name("ensemble", cfg)] = _stage(
            ["ensemble"], [config_dir(cfg, t) for t in plan.tasks], deps, keys, root=root
        )

    probe_keys = setting_keys(params, "probe", plan.suite, ["engine", "grid", "max_grid_points", "linear",
                                                            "heareval_python", "device"]) + ["seed"]
    for cfg in plan.configs:
        out[stage_name("probe", cfg)] = _stage(
            ["probe"], [scores_file(cfg, t) for t in plan.tasks], [config_dir(cfg, t) for t in plan.tasks],
            probe_keys, root=root,
        )
    # The layer probes read the MLP grid only with the native engine (linear: probe.linear).
    layer_settings = ["layers", "linear", "device"]
    if plan.probe["layers"]["engine"] == "native":
        layer_settings += ["grid", "max_grid_points"]
    layer_keys = setting_keys(params, "probe", plan.suite, layer_settings) + ["seed"]
    pairs = layer_probe_pairs(plan)
    for model in dict.fromkeys(m for m, _ in pairs):
        tasks = [t for m, t in pairs if m == model]
        out[stage_name("probe_layers", model)] = _stage(
            ["probe_layers"], [layer_scores_file(model, t) for t in tasks], [member_dir(model, t) for t in tasks],
            layer_keys, root=root,
        )

    scores = [scores_file(cfg, t) for cfg in plan.configs for t in plan.tasks]
    figures = report_figures(params, plan)
    files = report_outputs(plan, figures["names"])
    rules = ["metrics", "table", "score_plot", "figure_scores", "report_html"]
    rules += ["figure_ablations"] if "ablation_deltas" in figures["names"] else []
    rules += ["figure_tsne"] if "tsne_fusion" in figures["names"] else []
    rules += ["figure_layers"] if "layer_curves" in figures["names"] else []
    members = [member_dir(m, t) for m in plan.models for t in plan.tasks]  # the HTML's provenance, t-SNE
    deps = scores + members + figures["layer_files"] + ["reports/paper/tables.csv"]
    targets = [f for kind in ("metrics", "tables", "figures", "plots", "html") for f in files[kind]]
    plot_specs = {
        SCORE_PLOT: {"x": "score", "y": "entry", "template": "bar_horizontal",
                     "title": "Test score (each task's first metric) per configuration"},
        "reports/plots/scores_by_category.csv": {"template": "scatter", "x": "config", "y": "normalised",
                                                 "title": "Normalised primary-metric score per config (one point per task)"},
        "reports/plots/ablation_deltas.csv": {"template": "bar_horizontal", "x": "ours", "y": "pair",
                                              "title": "Ablation deltas (variant minus base, points), all tasks"},
        "reports/plots/tsne_fusion.csv": {"template": "scatter", "x": "x", "y": "y",
                                          "title": "t-SNE of fusion clip embeddings"},
        "reports/plots/layer_curves.csv": {"template": "linear", "x": "layer", "y": "score",
                                           "title": "Layer-wise probe score per hidden state"},
    }
    out["report"] = _stage(
        rules, targets, deps,
        ["suite", "seed", "report"], root=root,
        outs=[{f: {"cache": False}} for kind in ("tables", "figures", "html") for f in files[kind]],
        metrics=[{"reports/metrics.json": {"cache": False}}],
        plots=[{f: {"cache": False, **plot_specs.get(f, {})}} for f in files["plots"]],
    )
    return dict(out)


def snakemake_has_records(root: Path) -> bool:
    """Whether Snakemake has recorded any job in this working copy (.snakemake/metadata)."""
    meta = root / ".snakemake" / "metadata"
    return meta.is_dir() and next(os.scandir(meta), None) is not None


def settle_mtimes(root: Path) -> int:
    """Give the outputs of dvc.yaml's stages modification times in stage order (upstream older).

    For a working copy whose results came from `dvc pull` / `dvc checkout` while Snakemake has
    recorded no job there (a fresh clone): DVC writes files in its own order and git wrote the
    reports before, and Snakemake 9 compares input and output ages whatever `--rerun-triggers`
    says (its mtime check has no switch), so a plain `snakemake -n` would plan the whole DAG
    again. Contents are not read or changed. Returns the number of paths touched; does
    nothing where Snakemake has records or there is no dvc.yaml.
    """
    dvc_yaml = root / "dvc.yaml"
    if snakemake_has_records(root) or not dvc_yaml.is_file():
        return 0
    now = time.time_ns()
    step = 1_000  # 1 µs between paths: the order survives every filesystem's timestamp resolution
    count = 0
    for stage in (yaml.safe_load(dvc_yaml.read_text()) or {}).get("stages", {}).values():
        outs = [next(iter(e)) if isinstance(e, dict) else e for k in ("outs", "metrics", "plots") for e in stage.get(k, [])]
        targets = stage.get("cmd", "").split(" -- ", 1)[-1].split()  # generated in job order
        for name in sorted(outs, key=lambda o: targets.index(o) if o in targets else len(targets)):
            path = root / name
            if not path.exists():
                continue
            inner = sorted(p for p in path.rglob("*")) if path.is_dir() else []
            for p in [*inner, path]:  # a directory after its contents
                count += 1
                os.utime(p, ns=(now + count * step, now + count * step))
    return count


def render(params: dict, root: Path = ROOT) -> str:
    body = yaml.safe_dump({"stages": stages(params, root)}, sort_keys=False, width=10_000)
    return HEADER + body


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--output", default="dvc.yaml")
    parser.add_argument("--check", action="store_true", help="exit 1 if --output differs from the generated text")
    args = parser.parse_args(argv)
    root = Path.cwd()
    text = render(load_params(root / args.params), root)
    target = root / args.output
    if args.check:
        if not target.is_file() or target.read_text() != text:
            print(f"{args.output} is out of date: run `python -m hearflow.dvcgen`", file=sys.stderr)
            return 1
        return 0
    target.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
