"""Outputs that are neither what dvc.lock recorded nor what Snakemake wrote: damaged copies.

Issue 35's corrupt cache. `dvc checkout` copies a cache file into the workspace without
rehashing it, whether or not the file's mtime changed since DVC stored it (DVC 3.67.1,
dvc-data 3.18.3; tests/test_dvcrun.py). DVC finds a damaged cache file only where it rehashes
one (dvc-data's `HashFileDB.check`, which then deletes it: `dvc status` reported such a file
"not in cache" after a `dvc push` in a trial here), and its state database (keyed by inode,
mtime and size) spares it that work for a file damaged with its size and mtime kept.
DVC's checkout also records the copy's hash as the lock's (it trusts what it copied), so
`dvc status` and `dvc repro` then see nothing to do; the damage surfaces when a job reads the
copy. `damaged` finds such outputs before every Snakemake call of hearflow.workflow.dvcrun
(among every stage's outputs, not only the stages DVC runs): an
output that Snakemake has no record of writing as it is now (no finished record in
.snakemake/metadata, or files newer than that record: it came from `dvc checkout` / `dvc
pull`) and whose content differs from dvc.lock's md5 (DVC's own hash: md5 of a file; for a
folder, md5 of the JSON list of its files' md5s and paths, plus ".dir"). dvcrun forces them
(`--forcerun`, their stages joining the batch), so Snakemake builds them again before any job
reads the damaged copy, and
`purge_cache` removes the cache files of those outputs whose content no longer matches their
name (what DVC's own check does when it rehashes one), so that DVC stores the rebuilt
output anew and the next checkout is sound. Workspace files are hashed once per (size, mtime)
and the hashes kept in .dvc/tmp/hearflow-hashes.json.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import shutil
import sys
from pathlib import Path

import yaml

MEMO = Path(".dvc") / "tmp" / "hearflow-hashes.json"


def built_at(root: Path, output: str) -> float | None:
    """When Snakemake finished writing `output` in this working copy (its record in
    .snakemake/metadata, named as Snakemake names it), or None: no finished record (the
    output came from `dvc pull` / `dvc checkout`, or its job did not finish)."""
    meta = root / ".snakemake" / "metadata"
    try:
        max_len = os.pathconf(meta, "PC_NAME_MAX") or 255
    except (OSError, ValueError):
        max_len = 255
    b64 = base64.urlsafe_b64encode(output.encode()).decode()
    parts = [b64[i : i + max_len - 1] for i in range(0, len(b64), max_len - 1)]
    try:
        record = json.loads(meta.joinpath(*["@" + p for p in parts[:-1]], parts[-1]).read_text())
    except (OSError, ValueError):
        return None
    return None if record.get("incomplete") or not record.get("endtime") else float(record["endtime"])


def file_md5(path: Path) -> str:
    """The md5 of a file's bytes, read in 1 MiB blocks."""
    h = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _file_md5(path: Path, memo: dict) -> str:
    st = path.stat()
    key = str(path)
    seen = memo.get(key)
    if seen and seen[0] == st.st_size and seen[1] == st.st_mtime_ns:
        return seen[2]
    memo[key] = [st.st_size, st.st_mtime_ns, file_md5(path)]
    return memo[key][2]


def dvc_md5(path: Path, memo: dict | None = None) -> str:
    """DVC's md5 of a workspace path: the file's md5, or for a folder the md5 of the JSON list
    of {"md5", "relpath"} of its files sorted by path, with ".dir" appended (dvc_data's
    Tree.as_bytes and digest)."""
    memo = {} if memo is None else memo
    if path.is_file():
        return _file_md5(path, memo)
    files = sorted(p for p in path.rglob("*") if p.is_file())
    entries = [{"md5": _file_md5(p, memo), "relpath": p.relative_to(path).as_posix()} for p in files]
    return hashlib.md5(json.dumps(entries, sort_keys=True).encode("utf-8")).hexdigest() + ".dir"


def cache_file(root: Path, md5: str) -> Path:
    """Where DVC 3 keeps the object `md5` in this working copy's cache."""
    return root / ".dvc" / "cache" / "files" / "md5" / md5[:2] / md5[2:]


def purge_cache(root: Path, md5: str) -> list[Path]:
    """Remove the cache files of a dvc.lock md5 (a file's, or a folder's ".dir" listing and the
    files it names) whose content does not hash to their name. Returns those removed."""
    objects = [md5]
    listing = cache_file(root, md5)
    if md5.endswith(".dir") and listing.is_file():
        try:
            objects += [e["md5"] for e in json.loads(listing.read_text())]
        except (ValueError, KeyError, TypeError):
            pass  # an unreadable listing is itself damaged: removed below
    removed = []
    for oid in objects:
        path = cache_file(root, oid)
        if path.is_file() and file_md5(path) != oid.removesuffix(".dir"):
            path.unlink()
            removed.append(path)
    return removed


def _newest_mtime(path: Path) -> float:
    if path.is_file():
        return path.stat().st_mtime
    return max((p.stat().st_mtime for p in path.rglob("*") if p.is_file()), default=path.stat().st_mtime)


def damaged(root: Path, stages: dict[str, tuple[list[str], dict | None]]) -> dict[str, list[str]]:
    """{stage: its damaged outputs}, for `stages` given as {name: (outputs as dvc.yaml names
    them, the stage's dvc.lock entry)}: the outputs whose workspace content differs from
    dvc.lock while Snakemake did not write them as they are (`built_at`). Stages with none are
    left out. The hash memo is read and written once."""
    memo_path = root / MEMO
    try:
        memo = json.loads(memo_path.read_text())
    except (OSError, ValueError):
        memo = {}
    found: dict[str, list[str]] = {}
    for name, (outs, lock) in stages.items():
        locked = {o["path"]: o.get("md5") for o in (lock or {}).get("outs", []) if o.get("md5")}
        for out in outs:
            path = root / out
            if out not in locked or not path.exists():
                continue
            built = built_at(root, out)
            if built is not None and _newest_mtime(path) <= built + 1.0:  # Snakemake wrote it as it is
                continue
            if dvc_md5(path, memo) != locked[out]:
                found.setdefault(name, []).append(out)
    if memo:
        memo_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = memo_path.with_name(f"{memo_path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(memo))
        tmp.replace(memo_path)
    return found


def locked_md5(lock: dict | None, out: str) -> str | None:
    """The md5 dvc.lock's stage entry `lock` records for output `out`."""
    return next((o.get("md5") for o in (lock or {}).get("outs", []) if o["path"] == out), None)


def main(argv: list[str] | None = None) -> int:
    """Check every output of dvc.lock in this working copy (`python -m hearflow.workflow.outcheck`):
    list those that differ from dvc.lock and that Snakemake did not write; with --repair
    delete them and their damaged cache files, so that `dvc pull` or `dvc repro` restores them."""
    parser = argparse.ArgumentParser(description=main.__doc__.split(":")[0])
    parser.add_argument("--repair", action="store_true", help="delete damaged outputs and cache files")
    parser.add_argument("--root", type=Path, default=Path.cwd())
    args = parser.parse_args(argv)
    lock = (yaml.safe_load((args.root / "dvc.lock").read_text()) or {}).get("stages", {})
    found = damaged(args.root, {n: ([x["path"] for x in s.get("outs", [])], s) for n, s in lock.items()})
    bad = [(n, out) for n, outs in found.items() for out in outs]
    for name, out in bad:
        print(f"damaged: {out} differs from dvc.lock and was not written by Snakemake")
        if args.repair:
            path = args.root / out
            shutil.rmtree(path) if path.is_dir() else path.unlink()
            purge_cache(args.root, locked_md5(lock[name], out))
    if bad:
        print(
            (
                "removed; run `dvc pull` or `dvc repro` to restore them"
                if args.repair
                else "run with --repair to remove them"
            )
        )
    else:
        print(f"every output present matches dvc.lock ({sum(len(s.get('outs', [])) for s in lock.values())} outputs)")
    return 1 if bad and not args.repair else 0


if __name__ == "__main__":
    sys.exit(main())
