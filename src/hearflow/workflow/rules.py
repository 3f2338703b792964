"""The rule registry: every rule of the workflow, as its entry in rules/<phase>.smk says.

    rules = rule_registry()                       # {name: RuleSpec}, in the Snakefile's order
    rules["probe"].script, rules["probe"].reads   # scripts/probe.py, (Read("probe.engine"), ...)

A rule entry is all there is to know about a rule; nobody keeps a second list (dvc.yaml's
stages, the validation of `resources.jobs` and the tests read this):

- phase and file: the rule file the Snakefile includes it from (`rules/<phase>.smk`);
- script: its `script:` adapter (a rule without one only gathers targets);
- reads: the params.yaml keys of the `settings(...)` and `reads(...)` calls in its `params:`
  (defined in rules/common.smk, values from `rule_settings` below): `settings` passes the
  keys' values to the script, `reads` declares the keys its other params are derived from.
  Keys may hold `{suite}` and wildcards (`models.{model}.options`); `when={key: value}` makes
  them count only while `key` has that value; "*" stands for every key;
- sizing: "jobs" when its threads and resources come from `resources.jobs.<rule>`
  (`job_threads/job_mem_mb/job_runtime("<rule>")`), "embed" when from `resources.embed.<model>`;
- suites: where it is defined under `if PLAN.suite == "<suite>":`, the one suite it exists in.

The rule files are parsed, not run: reading the registry needs no Snakemake and no params.
"""

from __future__ import annotations

import ast
import os
import re
import string
import textwrap
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from hearflow.workflow.keys import has_setting, setting

ROOT = Path(__file__).resolve().parents[3]  # the checkout: src/hearflow/workflow/rules.py

ALL_KEYS = "*"  # a read of every params key (a rule that shows the whole configuration)
SIZINGS = {
    "job_threads": "jobs",
    "job_mem_mb": "jobs",
    "job_runtime": "jobs",
    "embed_threads": "embed",
    "embed_mem_mb": "embed",
    "embed_runtime": "embed",
    "embed_request": "embed",
}
_INCLUDE = re.compile(r'^include:\s*"([^"]+)"\s*$', re.M)
_RULE = re.compile(r"^(?P<indent> *)rule (?P<name>\w+):\s*$")
_DIRECTIVE = re.compile(r"^(?P<indent> +)(?P<key>\w+):\s*(?P<rest>.*)$")


@dataclass(frozen=True)
class Read:
    """A params.yaml key a rule reads: a template over `{suite}` and the rule's wildcards, read
    only while every (key, value) of `when` holds."""

    key: str
    when: tuple[tuple[str, Any], ...] = ()

    def applies(self, params: dict) -> bool:
        return all(setting(params, k) == v for k, v in self.when)

    def resolve(self, params: dict, wildcards: dict[str, str]) -> str:
        """The key for one job: `{suite}` and wildcards filled in (KeyError: a wildcard missing)."""
        return self.key.format(suite=params["suite"], **wildcards)


@dataclass(frozen=True)
class RuleSpec:
    name: str
    phase: str  # the rule file's stem: data, embed, ensemble, probe, report
    file: str  # e.g. rules/probe.smk (relative to the repository root)
    script: str | None  # e.g. scripts/probe.py
    reads: tuple[Read, ...]
    sizing: str | None  # "jobs" | "embed" | None (no cluster request of its own)
    suites: tuple[str, ...] | None = None  # defined for these suites only (None: every suite)

    def exists_in(self, suite: str) -> bool:
        return self.suites is None or suite in self.suites


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _block(lines: list[str], start: int, indent: int) -> list[str]:
    """The lines after `start` that are blank or indented deeper than `indent`."""
    out = []
    for line in lines[start + 1 :]:
        if line.strip() and _indent(line) <= indent:
            break
        out.append(line)
    while out and not out[-1].strip():
        out.pop()
    return out


def _directives(body: list[str]) -> dict[str, str]:
    """{directive: its text} of a rule body (the value on the directive's line and below it)."""
    first = next((line for line in body if line.strip()), None)
    if first is None:
        return {}
    level = _indent(first)
    out: dict[str, str] = {}
    for i, line in enumerate(body):
        m = _DIRECTIVE.match(line)
        if m and _indent(line) == level:
            below = _block(body, i, level)
            out[m["key"]] = "\n".join([m["rest"], textwrap.dedent("\n".join(below))]).strip()
    return out


def _literal(node: ast.AST, where: str) -> Any:
    try:
        return ast.literal_eval(node)
    except ValueError as err:
        raise ValueError(f"{where}: keys and `when` must be literals (the registry reads them from the text)") from err


def _reads(params_text: str, where: str) -> tuple[Read, ...]:
    """The Reads of the `settings(...)`/`reads(...)` calls of a `params:` directive."""
    call = ast.parse(f"_(\n{params_text}\n)", mode="eval").body
    found: list[Read] = []
    for kw in call.keywords:
        value = kw.value
        if not (
            kw.arg is None
            and isinstance(value, ast.Call)
            and isinstance(value.func, ast.Name)
            and value.func.id in ("settings", "reads")
        ):
            continue
        named = {k.arg: k.value for k in value.keywords}
        when = named.pop("when", None)
        when = tuple(sorted(_literal(when, where).items())) if when is not None else ()
        if value.func.id == "reads" and named:
            raise ValueError(f"{where}: reads() takes keys only (settings() passes named values)")
        keys = [_literal(a, where) for a in value.args] + [_literal(v, where) for v in named.values()]
        found += [Read(k, when) for k in keys]
    return tuple(found)


def _sizing(texts: list[str], name: str, where: str) -> str | None:
    kinds = set()
    for text in texts:
        tree = ast.parse(f"_(\n{text}\n)", mode="eval")
        for node in ast.walk(tree):
            ref = node.func if isinstance(node, ast.Call) else node
            if isinstance(ref, ast.Name) and ref.id in SIZINGS:
                kinds.add(SIZINGS[ref.id])
                if SIZINGS[ref.id] == "jobs" and isinstance(node, ast.Call):
                    named = _literal(node.args[0], where) if node.args else None
                    if named != name:
                        raise ValueError(f"{where}: {ref.id}({named!r}) sizes rule {name} by another rule's entry")
    if len(kinds) > 1:
        raise ValueError(f"{where}: sized both by resources.jobs and resources.embed")
    return kinds.pop() if kinds else None


def _suites(lines: list[str], at: int, indent: int, where: str) -> tuple[str, ...] | None:
    """The suite of an enclosing `if PLAN.suite == "<suite>":` (None at the top level)."""
    if indent == 0:
        return None
    for line in reversed(lines[:at]):
        if line.strip() and _indent(line) < indent:
            m = re.fullmatch(r'\s*if PLAN\.suite == "([\w-]+)":\s*', line)
            if not m:
                raise ValueError(
                    f'{where}: a rule may be nested only in `if PLAN.suite == "<suite>":`, found {line.strip()!r}'
                )
            return (m[1],)
    raise ValueError(f"{where}: indented rule outside any block")


def parse_rule_file(path: Path, root: Path = ROOT) -> list[RuleSpec]:
    """The rules of one rule file, in file order."""
    rel = path.relative_to(root).as_posix()
    lines = path.read_text().splitlines()
    out = []
    for i, line in enumerate(lines):
        m = _RULE.match(line)
        if not m:
            continue
        name, indent = m["name"], len(m["indent"])
        where = f"{rel}:{i + 1} rule {name}"
        directives = _directives(_block(lines, i, indent))
        script = None
        if "script" in directives:
            target = os.path.normpath(path.parent / _literal(ast.parse(directives["script"], mode="eval").body, where))
            script = Path(target).relative_to(root).as_posix()
        out.append(
            RuleSpec(
                name=name,
                phase=path.stem,
                file=rel,
                script=script,
                reads=_reads(directives["params"], where) if "params" in directives else (),
                sizing=_sizing([directives[k] for k in ("threads", "resources") if k in directives], name, where),
                suites=_suites(lines, i, indent, where),
            )
        )
    return out


@cache
def rule_registry(root: Path = ROOT) -> dict[str, RuleSpec]:
    """{rule name: RuleSpec} of every rule file the Snakefile includes, in include order."""
    rules: dict[str, RuleSpec] = {}
    for include in _INCLUDE.findall((root / "Snakefile").read_text()):
        for rule in parse_rule_file(root / include, root):
            if rule.name in rules:
                raise ValueError(f"rule {rule.name} defined in {rules[rule.name].file} and {rule.file}")
            rules[rule.name] = rule
    return rules


def job_rules(root: Path = ROOT) -> tuple[str, ...]:
    """The rules whose jobs `resources.jobs.<rule>` sizes (every rule with a script but embed)."""
    return tuple(name for name, r in rule_registry(root).items() if r.sizing == "jobs")


def _fields(key: str) -> list[str]:
    return [f for _, f, _, _ in string.Formatter().parse(key) if f]


def rule_settings(params: dict, keys, named: dict, when: dict | None = None, *, declare_only: bool = False) -> dict:
    """The params a rule's `settings(...)` passes: {name: value}, the name being the key's last
    part or the keyword given; a key over wildcards gives a function of the job's wildcards.
    With `when` not holding, every value is None; `declare_only` (`reads(...)`) passes nothing
    but still checks that the keys exist (where `when` holds)."""
    names = [key.rsplit(".", 1)[-1] for key in keys] + list(named)
    if len(set(names)) != len(names):
        raise ValueError(f"rule params: two keys would pass the same name in {names}; name one (settings(name=key))")
    entries = dict(zip(names, [*keys, *named.values()]))
    holds = all(setting(params, k) == v for k, v in (when or {}).items())
    out = {}
    for name, key in entries.items():
        wild = [f for f in _fields(key) if f != "suite"]
        # a key under a `when` that does not hold is not read (it may exist in one suite only)
        if key != ALL_KEYS and not wild and holds and not has_setting(params, key.format(suite=params["suite"])):
            raise KeyError(f"rule params: {key!r} is no params.yaml key of suite {params['suite']!r}")
        if declare_only:
            continue
        if not holds:
            out[name] = None
        elif wild:
            out[name] = lambda w, key=key: setting(params, key.format(suite=params["suite"], **dict(w.items())))
        else:
            out[name] = setting(params, key.format(suite=params["suite"]))
    return out
