"""dvc.yaml as hearflow writes it: a stage's command and its out entries, read back.

Shared by the generator (hearflow.workflow.dvcgen) and the stage runner
(hearflow.workflow.dvcrun), which otherwise do not import each other's modules.
"""

from __future__ import annotations

from collections.abc import Iterable


def parse_cmd(cmd: str) -> tuple[list[str], list[str]]:
    """(rules, targets) of a stage command `python -m hearflow.workflow.dvcrun --rules R.. -- T..`."""
    head, _, tail = cmd.partition(" -- ")
    words = head.split()
    rules = words[words.index("--rules") + 1 :] if "--rules" in words else []
    return rules, tail.split()


def stage_paths(entries: Iterable) -> list[str]:
    """The paths of dvc.yaml out entries (a path, or {path: options})."""
    return [next(iter(e)) if isinstance(e, dict) else e for e in entries]
