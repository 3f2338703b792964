"""dvc.yaml, generated from params.yaml: DVC stages over the Snakemake DAG, one per phase.

    python -m hearflow.workflow.dvcgen            # rewrite dvc.yaml from params.yaml
    python -m hearflow.workflow.dvcgen --check    # exit 1 if the committed dvc.yaml is out of date

Stages: `data` (every task's demo synthesis, download, extraction, resampling), `standin`,
`embed-<model>` (each model has its own code and keys), `ensemble`, `probe`, `probe_layers`
and `report`: ten for the demo. DVC rewrites the whole dvc.lock after every stage, so its own
time grows with stages x lock size (53 per-task and per-config stages made it a third of the
demo's `dvc repro`); wide stages lose nothing, since every stage command is `python -m
hearflow.workflow.dvcrun --rules <its rules> -- <its targets>`: the first one a `dvc repro` runs builds,
in one Snakemake call, every stage that repro may run, Snakemake rebuilding only what is out
of date, and forcing only the jobs a change touches (`forcing`: the keys and code files of the
job behind each target); the later commands find their outputs built. Outputs are
`persist: true` so that DVC leaves them in place. Stage commands name no executor:
`SNAKEMAKE_PROFILE=slurm dvc repro` keeps every hash.

Which rules a stage runs, their rule files, scripts and params keys come from the rule registry
(hearflow.workflow.rules: each rule's entry in rules/<phase>.smk), an embedding stage's model module from
the model registry (hearflow.embed.models). Deps are exactly the upstream outputs plus the code the
stage's rules run (their rule file, `script:` adapters and the hearflow modules these import,
found by parsing them); params are exactly the keys those rules read, with a suite override
listed instead of the key it overrides. Which stages exist and what they hold depends on
`suite`, `suites.<suite>.{tasks,configs,substitutes,overrides}`, `models` and `configs`: after
changing those, regenerate (a test fails otherwise).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from hearflow.core.codedeps import code_files
from hearflow.core.hear import ARCHIVE_RATE
from hearflow.embed.models import registry as model_registry
from hearflow.workflow.config import ROOT, Plan, load_params, make_plan, wide_embeds, wide_probes
from hearflow.workflow.dvcfile import parse_cmd, stage_paths
from hearflow.workflow.keys import key_sources
from hearflow.workflow.rules import ALL_KEYS, RuleSpec, rule_registry
from hearflow.workflow.targets import (
    SYNTH_RULES,
    archive_file,
    config_dir,
    layer_probe_pairs,
    layer_scores_file,
    member_dir,
    mirror_archive,
    report_figures,
    report_outputs,
    scores_file,
    standin_dir,
    task_dir,
)

RUN = "python -m hearflow.workflow.dvcrun"  # one Snakemake call for all the stages a repro runs
PARAMS_FILE = "params.yaml"
HEADER = (
    "# Generated from params.yaml by `python -m hearflow.workflow.dvcgen`: do not edit, regenerate.\n"
    "# Stage commands (hearflow.workflow.dvcrun): the first one a `dvc repro` runs builds every stage\n"
    "# that repro may run in one Snakemake call, at Snakemake's parallelism; the others find\n"
    "# their outputs built (outputs persist, so DVC leaves them in place). No executor flags:\n"
    "# pick one with SNAKEMAKE_PROFILE (e.g. `SNAKEMAKE_PROFILE=slurm dvc repro`); stage\n"
    "# hashes stay the same.\n"
)
PERSIST = {"persist": True}
SCORE_PLOT = "reports/plots/scores.csv"
PLOT_SPECS = {
    SCORE_PLOT: {
        "x": "score",
        "y": "entry",
        "template": "bar_horizontal",
        "title": "Test score (each task's first metric) per configuration",
    },
    "reports/plots/scores_by_category.csv": {
        "template": "scatter",
        "x": "config",
        "y": "normalised",
        "title": "Normalised primary-metric score per config (one point per task)",
    },
    "reports/plots/ablation_deltas.csv": {
        "template": "bar_horizontal",
        "x": "ours",
        "y": "pair",
        "title": "Ablation deltas (variant minus base, points), all tasks",
    },
    "reports/plots/tsne_fusion.csv": {
        "template": "scatter",
        "x": "x",
        "y": "y",
        "title": "t-SNE of fusion clip embeddings",
    },
    "reports/plots/layer_curves.csv": {
        "template": "linear",
        "x": "layer",
        "y": "score",
        "title": "Layer-wise probe score per hidden state",
    },
}


def stage_name(*parts: str) -> str:
    """DVC stage names allow letters, digits, '_' and '-' only (task names hold dots)."""
    return "-".join(parts).replace(".", "_")


class _UniqueStages(dict):
    def __setitem__(self, name, stage):
        if name in self:  # two names that differ only in '.' vs '_'
            raise ValueError(f"two DVC stages named {name!r}")
        super().__setitem__(name, stage)


def params_keys(rules: list[RuleSpec], params: dict, **wildcards: str) -> list:
    """DVC `params:` of a stage running `rules` for these wildcard values: every key the
    rules read (hearflow.workflow.rules), each as the params.yaml keys behind it (a suite override
    instead of the key it overrides); the whole params file where a rule reads every key."""
    keys: list[str] = []
    for rule in rules:
        for read in rule.reads:
            if read.key == ALL_KEYS:
                return [{PARAMS_FILE: None}]
            if read.applies(params):
                keys += key_sources(params, read.resolve(params, wildcards))
    flat = _flat_keys(params)
    return sorted(k for k in set(keys) if k in flat)  # keys a job of another model lacks (standin)


def _flat_keys(d: dict, prefix: str = "") -> set[str]:
    out = set()
    for k, v in d.items():
        out.add(prefix + str(k))
        if isinstance(v, dict):
            out |= _flat_keys(v, f"{prefix}{k}.")
    return out


@dataclass
class Jobs:
    """The jobs of one rule in one stage for one set of wildcard values: the targets they
    write, the data they read from other stages, the params keys and code files they depend
    on. A stage is one or more of these; hearflow.workflow.dvcrun forces them one by one."""

    rule: RuleSpec
    targets: list[str]
    deps: list[str]
    keys: list  # params keys (sorted), or [{params.yaml: None}]: every key
    code: list[str]


def _jobs(
    rule: RuleSpec,
    targets: list[str],
    deps: list[str],
    params: dict,
    *,
    root: Path,
    wildcards: dict | None = None,
    extra_modules: list[str] = (),
) -> Jobs:
    code = [rule.file] + code_files([rule.script] if rule.script else [], extra_modules, root)
    return Jobs(rule, list(targets), list(deps), params_keys([rule], params, **(wildcards or {})), sorted(code))


def _union_keys(groups: list[Jobs]) -> list:
    if any(k == {PARAMS_FILE: None} for g in groups for k in g.keys):
        return [{PARAMS_FILE: None}]
    return sorted({k for g in groups for k in g.keys})


def _stage(groups: list[Jobs], *, outs=None, metrics=None, plots=None) -> dict:
    """A dvc.yaml stage running `groups`: its rules on all their targets in one command, deps
    the data they read from other stages plus every code file, params the union of keys."""
    rules = list(dict.fromkeys(g.rule.name for g in groups))
    targets = [t for g in groups for t in g.targets]
    produced = set(targets)
    data = [d for d in dict.fromkeys(d for g in groups for d in g.deps) if d not in produced]
    code = sorted({c for g in groups for c in g.code})
    stage = {"cmd": f"{RUN} --rules {' '.join(rules)} -- {' '.join(targets)}", "deps": data + code}
    keys = _union_keys(groups)
    if keys:
        stage["params"] = keys
    outs = outs if outs is not None else [{t: dict(PERSIST)} for t in targets]
    if outs:
        stage["outs"] = outs
    if metrics:
        stage["metrics"] = metrics
    if plots:
        stage["plots"] = plots
    return stage


def stage_jobs(params: dict, root: Path = ROOT) -> dict[str, list[Jobs]]:
    """{stage name: its Jobs}, in DAG order: one stage per phase (all tasks of the data phase,
    every stand-in, every configuration's ensembles, probes and layer-wise probes, the
    report), embeddings one stage per model (each model has its own code and keys). What each
    job runs, reads and depends on comes from the rule registry (hearflow.workflow.rules) and the model
    registry."""
    plan: Plan = make_plan(params)
    rules = rule_registry(root)
    synth = SYNTH_RULES.get(plan.suite)  # the rule synthesising the suite's archives, if any
    out: dict[str, list[Jobs]] = _UniqueStages()

    def phase(name: str) -> list[RuleSpec]:
        """The rules of a phase that run a script in this suite (rules/<phase>.smk order)."""
        return [r for r in rules.values() if r.phase == name and r.script and r.exists_in(plan.suite)]

    def jobs(rule: RuleSpec, targets: list[str], deps: list[str] = (), **kw) -> Jobs:
        return _jobs(rule, targets, list(deps), params, root=root, **kw)

    archive_rates = sorted(set(params["suites"][plan.suite].get("archive_rates", [ARCHIVE_RATE])))
    resampled = [r for r in plan.rates if r not in archive_rates]
    # The 48 kHz folder: the resampling source (or a model's rate). Other rates of the suite's
    # archive_rates come from their own archives; the rest are resampled.
    direct = [ARCHIVE_RATE] if resampled or ARCHIVE_RATE in plan.rates else []
    direct += [r for r in plan.rates if r in archive_rates and r != ARCHIVE_RATE]
    data = {r.name: r for r in phase("data")}
    groups = []
    for task in plan.tasks:
        w = {"wildcards": {"task": task}}
        if synth:
            groups.append(jobs(data[synth], [mirror_archive(plan.mirror, task)], **w))
        for rate in direct:
            groups.append(jobs(data["download"], [archive_file(task, rate)], **w))
            groups.append(jobs(data["extract"], [task_dir(rate, task)], [archive_file(task, rate)], **w))
        if resampled:
            source = task_dir(ARCHIVE_RATE, task)
            groups.append(jobs(data["resample"], [task_dir(r, task) for r in resampled], [source], **w))
    out["data"] = groups

    standins = [m for m, spec in plan.models.items() if "standin" in spec]
    if standins:
        out["standin"] = [jobs(rules["standin"], [standin_dir(m)], wildcards={"model": m}) for m in standins]
    modules = model_registry(root / "src" / "hearflow" / "embed" / "models")
    for model, spec in plan.models.items():
        upstream = [standin_dir(model)] if "standin" in spec else []
        extra = [modules[spec["module"]].module]
        if wide_embeds(params):  # suites.<suite>.embed_jobs: one job over every task
            out[stage_name("embed", model)] = [
                jobs(
                    rules["embed_wide"],
                    [member_dir(model, task) for task in plan.tasks],
                    [task_dir(plan.rate(model), task) for task in plan.tasks] + upstream,
                    wildcards={"model": model},
                    extra_modules=extra,
                )
            ]
            continue
        out[stage_name("embed", model)] = [
            jobs(
                rules["embed"],
                [member_dir(model, task)],
                [task_dir(plan.rate(model), task)] + upstream,
                wildcards={"model": model, "task": task},
                extra_modules=extra,
            )
            for task in plan.tasks
        ]

    out["ensemble"] = [
        jobs(
            rules["ensemble"],
            [config_dir(cfg, t) for t in plan.tasks],
            [member_dir(m, t) for m in sorted({m.model for m in config.members}) for t in plan.tasks],
            wildcards={"cfg": cfg},
        )
        for cfg, config in plan.configs.items()
    ]
    probe_rule = rules["probe_wide" if wide_probes(params) else "probe"]  # suites.<suite>.probe_jobs
    out["probe"] = [
        jobs(
            probe_rule,
            [scores_file(cfg, t) for t in plan.tasks],
            [config_dir(cfg, t) for t in plan.tasks],
            wildcards={"cfg": cfg},
        )
        for cfg in plan.configs
    ]
    pairs = layer_probe_pairs(plan)
    if pairs:
        out["probe_layers"] = [
            jobs(
                rules["probe_layers_wide" if wide_probes(params) else "probe_layers"],
                [layer_scores_file(m, t) for mm, t in pairs if mm == m],
                [member_dir(m, t) for mm, t in pairs if mm == m],
                wildcards={"model": m},
            )
            for m in dict.fromkeys(m for m, _ in pairs)
        ]

    # The report: every rule of the phase over all the report files (forced as one).
    scores = [scores_file(cfg, t) for cfg in plan.configs for t in plan.tasks]
    figures = report_figures(params, plan)
    files = report_outputs(plan, figures["names"])
    members = [member_dir(m, t) for m in plan.models for t in plan.tasks]  # the HTML's provenance, t-SNE
    deps = scores + members + figures["layer_curve_scores"] + ["reports/paper/tables.csv"]
    targets = [f for kind in ("metrics", "tables", "figures", "plots", "html") for f in files[kind]]
    report_rules = phase("report")
    code = sorted({c for r in report_rules for c in _jobs(r, [], [], params, root=root).code})
    keys = _union_keys([_jobs(r, [], [], params, root=root) for r in report_rules])
    out["report"] = [Jobs(r, targets if i == 0 else [], deps, keys, code) for i, r in enumerate(report_rules)]
    return dict(out)


def stages(params: dict, root: Path = ROOT) -> dict[str, dict]:
    """The DVC stages of the active suite, in DAG order (stage_jobs, one dvc.yaml entry each)."""
    plan = make_plan(params)
    files = report_outputs(plan, report_figures(params, plan)["names"])
    jobs = stage_jobs(params, root)
    out = {name: _stage(groups) for name, groups in jobs.items() if name != "report"}
    out["report"] = _stage(
        jobs["report"],
        outs=[{f: {"cache": False, **PERSIST}} for kind in ("tables", "figures", "html") for f in files[kind]],
        metrics=[{f: {"cache": False, **PERSIST}} for f in files["metrics"]],
        plots=[{f: {"cache": False, **PERSIST, **PLOT_SPECS.get(f, {})}} for f in files["plots"]],
    )
    return out


def forcing(params: dict, root: Path = ROOT) -> dict[str, tuple[list, list[str]]]:
    """{target: (params keys, code files)} of every stage target: what the job writing it
    depends on, for hearflow.workflow.dvcrun to force only the jobs a change touches."""
    return {t: (g.keys, g.code) for groups in stage_jobs(params, root).values() for g in groups for t in g.targets}


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
        outs = [o for k in ("outs", "metrics", "plots") for o in stage_paths(stage.get(k, []))]
        targets = parse_cmd(stage.get("cmd", ""))[1]  # generated in job order
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
            print(f"{args.output} is out of date: run `python -m hearflow.workflow.dvcgen`", file=sys.stderr)
            return 1
        return 0
    target.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
