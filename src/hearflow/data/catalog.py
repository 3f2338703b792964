"""Task catalogs (data files under catalog/) and task selection by name or category.

catalog = load_catalog("catalog/hear2021.yaml")
select_tasks(["speech", "esc50-v2.0.0-full"], catalog)   # every speech task + ESC-50
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import yaml

CATEGORIES = ("speech", "music", "general")


class SelectionError(ValueError):
    """A task selector names neither a task nor a category of the catalog."""


@cache
def load_catalog(path: str | Path) -> dict[str, dict]:
    """{task name: facts} from a catalog YAML file."""
    return yaml.safe_load(Path(path).read_text())["tasks"]


def select_tasks(selectors: list[str], catalog: dict[str, dict] | None) -> tuple[str, ...]:
    """Expand selectors ("all", a category, or a task name) into task names, catalog order.

    Without a catalog every selector must be a task name and is kept as given.
    """
    if catalog is None:
        return tuple(dict.fromkeys(selectors))
    chosen: set[str] = set()
    for i, sel in enumerate(selectors):
        if sel == "all":
            chosen |= set(catalog)
        elif sel in CATEGORIES:
            chosen |= {t for t, facts in catalog.items() if facts["category"] == sel}
        elif sel in catalog:
            chosen.add(sel)
        else:
            raise SelectionError(
                f"tasks.{i}: {sel!r} is neither a task of the catalog nor one of {('all',) + CATEGORIES}"
            )
    return tuple(t for t in catalog if t in chosen)
