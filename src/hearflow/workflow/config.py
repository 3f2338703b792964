"""params.yaml: validation and the plan of one run (which tasks, models, configs, rates).

Imports nothing heavy: Snakemake calls this at parse time, `snakemake -n` stays fast.

    params = load_params("params.yaml")          # validated, or ParamsError naming the key
    plan = make_plan(params)                     # the active suite, substitutes applied

A key as the active suite sees it, and the params.yaml keys behind it: hearflow.workflow.keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml

from hearflow.data.catalog import SelectionError, load_catalog, select_tasks
from hearflow.embed.models import model_spec, registry
from hearflow.workflow.keys import OVERRIDABLE, setting

ROOT = Path(__file__).resolve().parents[3]
SCHEMA = ROOT / "schemas" / "params.schema.yaml"


class ParamsError(ValueError):
    """params.yaml is invalid; the message names the key."""


@cache
def _schema() -> dict:
    """The params schema, its `model_module` enum filled from the model registry."""
    schema = yaml.safe_load(SCHEMA.read_text())
    schema["$defs"]["model_module"]["enum"] = sorted(registry())
    return schema


def _where(path) -> str:
    return ".".join(str(p) for p in path) or "<top level>"


def validate_params(params: dict) -> None:
    """Check params against the schema and across sections; raise ParamsError naming the key."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(_schema())
    errors = sorted(
        validator.iter_errors(params), key=lambda e: (len(e.absolute_path), list(map(str, e.absolute_path)))
    )
    if errors:
        lines = [f"params: {_where(e.absolute_path)}: {e.message}" for e in errors[:5]]
        raise ParamsError("\n".join(lines))
    models, configs = params["models"], params["configs"]
    problems = []
    if params["suite"] not in params["suites"]:
        problems.append(f"suite: {params['suite']!r} is not defined under suites ({sorted(params['suites'])})")
    for name, cfg in configs.items():
        for i, m in enumerate(cfg["members"]):
            if m["model"] not in models:
                problems.append(
                    f"configs.{name}.members.{i}.model: unknown model {m['model']!r} (models: {sorted(models)})"
                )
        if cfg["combine"] == "single" and len(cfg["members"]) != 1:
            problems.append(f"configs.{name}.combine: 'single' takes exactly one member, got {len(cfg['members'])}")
        groups = cfg.get("pooling", "mean")
        if isinstance(groups, dict):
            if groups["groups"] not in params["embed"]["scene_groups"]:
                problems.append(
                    f"configs.{name}.pooling.groups: {groups['groups']} is not in embed.scene_groups "
                    f"{params['embed']['scene_groups']}: the members' time-group views would not exist"
                )
            for i, m in enumerate(cfg["members"]):
                if m["layer"] not in ("last", "fusion"):
                    problems.append(f"configs.{name}.members.{i}.layer: time-group pooling needs layer last or fusion")
    for sname, suite in params["suites"].items():
        try:
            suite_tasks(suite)
        except SelectionError as err:
            problems.append(f"suites.{sname}.{err}")
        except OSError as err:
            problems.append(f"suites.{sname}.catalog: cannot read {suite['catalog']}: {err.strerror}")
        for i, c in enumerate(suite["configs"]):
            if c not in configs:
                problems.append(f"suites.{sname}.configs.{i}: unknown config {c!r}")
        for real, sub in suite["substitutes"].items():
            for key, model in (
                (f"suites.{sname}.substitutes.{real}", real),
                (f"suites.{sname}.substitutes.{real}", sub),
            ):
                if model not in models:
                    problems.append(f"{key}: unknown model {model!r}")
    for key in params["resources"]["embed"]:
        if key != "default" and key not in models:
            problems.append(f"resources.embed.{key}: unknown model {key!r} (models: {sorted(models)})")
    from hearflow.workflow.rules import job_rules

    for key in params["resources"]["jobs"]:
        if key != "default" and key not in job_rules():
            problems.append(f"resources.jobs.{key}: unknown rule {key!r} (rules: {sorted(job_rules())})")
    tables = [("report.tables", params["report"]["tables"])] + [
        (f"suites.{s}.overrides.report.tables", suite["overrides"].get("report", {}).get("tables", {}))
        for s, suite in params["suites"].items()
    ]
    for where, named in tables:
        for table, names in named.items():
            for i, c in enumerate(names):
                if c not in configs:
                    problems.append(f"{where}.{table}.{i}: unknown config {c!r}")
    figures = params["report"]["figures"]
    for i, m in enumerate(figures["tsne"]["models"]):
        if m not in models:
            problems.append(f"report.figures.tsne.models.{i}: unknown model {m!r}")
    for i, pair in enumerate(figures["ablations"]):
        for j, c in enumerate(pair):
            if c not in configs:
                problems.append(f"report.figures.ablations.{i}.{j}: unknown config {c!r}")
    if problems:
        raise ParamsError("\n".join(f"params: {p}" for p in problems))


def suite_tasks(suite: dict) -> tuple[str, ...]:
    """The task names a suite selects (names, categories or "all" through its catalog)."""
    catalog = load_catalog(ROOT / suite["catalog"]) if suite["catalog"] else None
    return select_tasks(suite["tasks"], catalog)


def load_params(path: str | Path = ROOT / "params.yaml", overrides: dict | None = None) -> dict:
    """Read, merge command-line `overrides` (top-level keys), and validate."""
    params = yaml.safe_load(Path(path).read_text())
    params.update(overrides or {})
    validate_params(params)
    return params


@dataclass(frozen=True)
class Member:
    model: str
    layer: str | int

    @property
    def view(self) -> str:
        """Sub-directory of a member's embedding dir holding this layer choice."""
        return self.layer if isinstance(self.layer, str) else f"layers/{self.layer:02d}"


@dataclass(frozen=True)
class EmbeddingConfig:
    """One embedding configuration (params `configs.<name>`, a row of the paper's tables)."""

    name: str
    members: tuple[Member, ...]
    combine: str
    dim: int | None
    pooling: dict | str = "mean"  # scene pooling: "mean" | {"groups": N}


@dataclass(frozen=True)
class Plan:
    """Everything a run of the active suite needs, derived from params only."""

    suite: str
    seed: int
    tasks: tuple[str, ...]
    catalog: dict  # task name -> catalog facts (empty for suites without a catalog)
    max_clips_per_split: int | None
    mirror: str
    checksums: str
    models: dict  # name -> spec, only the models the configs use
    configs: dict  # name -> EmbeddingConfig, members with substitutes applied
    probe: dict
    embed: dict
    tables: dict

    def rate(self, model: str) -> int:
        spec = self.models[model]
        return int(spec["options"].get("sample_rate", model_spec(spec["module"]).sample_rate))

    @property
    def rates(self) -> tuple[int, ...]:
        return tuple(sorted({self.rate(m) for m in self.models}))


JOB_SHAPES = ("narrow", "wide")


def _job_shape(params: dict, key: str) -> bool:
    value = params["suites"][params["suite"]].get(key, "narrow")
    if value not in JOB_SHAPES:
        raise ValueError(f"params: suites.{params['suite']}.{key} is {value!r}; choose one of {JOB_SHAPES}")
    return value == "wide"


def wide_probes(params: dict) -> bool:
    """Whether the active suite probes one configuration on every task in one job (rule
    probe_wide; suites.<suite>.probe_jobs: wide) rather than one job per (configuration,
    task) (narrow, the default)."""
    return _job_shape(params, "probe_jobs")


def wide_embeds(params: dict) -> bool:
    """Whether the active suite embeds every task with one model in one job (rule embed_wide;
    suites.<suite>.embed_jobs: wide: one interpreter start and one model load instead of one
    per task) rather than one job per (model, task) (narrow, the default)."""
    return _job_shape(params, "embed_jobs")


def make_plan(params: dict) -> Plan:
    """Resolve the active suite: substitute models, apply the suite's overrides."""
    name = params["suite"]
    suite = params["suites"][name]
    settings = {section: setting(params, section) for section in OVERRIDABLE}
    subs = suite["substitutes"]
    configs = {}
    for cname in suite["configs"]:
        cfg = params["configs"][cname]
        members = tuple(Member(subs.get(m["model"], m["model"]), m["layer"]) for m in cfg["members"])
        dim = None if cfg["combine"] == "single" else cfg.get("dim", settings["ensemble"]["dim"])
        configs[cname] = EmbeddingConfig(cname, members, cfg["combine"], dim, cfg.get("pooling", "mean"))
    used = sorted({m.model for c in configs.values() for m in c.members})
    tables = {t: [c for c in names if c in configs] for t, names in settings["report"]["tables"].items()}
    return Plan(
        suite=name,
        seed=params["seed"],
        tasks=suite_tasks(suite),
        catalog=load_catalog(ROOT / suite["catalog"]) if suite["catalog"] else {},
        max_clips_per_split=suite["max_clips_per_split"],
        mirror=suite["mirror"],
        checksums=suite["checksums"],
        models={m: params["models"][m] for m in used},
        configs=configs,
        probe=settings["probe"],
        embed=settings["embed"],
        tables={t: names for t, names in tables.items() if names},
    )
