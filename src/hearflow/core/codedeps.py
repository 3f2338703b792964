"""The code a job runs: a script and every hearflow module it imports, found by parsing.

    code_files(["scripts/probe_wide.py"])   # ["scripts/probe_wide.py", "src/hearflow/core/io.py", ...]

dvc.yaml's code deps of each stage (hearflow.workflow.dvcgen) and the cache key of wide probe jobs
(hearflow.probe.job.probe_key) are this list. Imports nothing of hearflow, so that a module
using it does not make every stage depend on the rest of the package.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]  # the checkout: src/hearflow/core/codedeps.py


def _module_file(module: str, root: Path) -> Path | None:
    base = root / "src" / Path(*module.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


@functools.cache
def _imported(path: Path, stamp: tuple[int, int]) -> tuple[str, ...]:
    """The hearflow modules a file imports anywhere (lazy imports too), with their packages
    (importing `hearflow.embed.models.ssl` runs `hearflow/embed/models/__init__.py` first). `stamp`
    (mtime, size) keys the cache to the file's version."""
    names = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names += [node.module] + [f"{node.module}.{a.name}" for a in node.names]
    parts = [n.split(".") for n in names if n == "hearflow" or n.startswith("hearflow.")]
    return tuple(dict.fromkeys(".".join(p[:i]) for p in parts for i in range(1, len(p) + 1)))


def code_files(scripts: list[str], extra_modules: list[str] = (), root: Path = ROOT) -> list[str]:
    """The scripts plus every hearflow module they import, transitively (lazy imports too)."""
    todo = [root / s for s in scripts] + [_module_file(m, root) for m in extra_modules]
    seen: set[Path] = set()
    while todo:
        path = todo.pop()
        if path is None or path in seen:
            continue
        seen.add(path)
        st = path.stat()
        todo += [_module_file(name, root) for name in _imported(path, (st.st_mtime_ns, st.st_size))]
    return sorted(p.relative_to(root).as_posix() for p in seen)
