"""The command of every dvc.yaml stage: one Snakemake run builds all that a `dvc repro` runs.

    python -m hearflow.workflow.dvcrun --rules probe -- results/probe/crepe/demo_tones-v1-full/scores.json ...

DVC runs stages one after another (it has no parallel repro), so a stage command that ran
Snakemake on its own targets only would queue a cluster's embedding jobs one behind the
other and pay Snakemake's and torch's start-up once per stage. Instead, the first stage
command of a `dvc repro` (or `dvc exp run`) plans a *batch* and builds it in one Snakemake
call, at Snakemake's parallelism (`SNAKEMAKE_PROFILE` picks the executor, as before):

- the batch is that stage, every stage with a change this module can see (see `reasons`),
  and everything downstream of them: the stages this repro may run;
- Snakemake gets the batch's targets and rules (`--allowed-rules`: no other stage's rule
  runs), and `--forcerun` for the targets DVC must rebuild that Snakemake cannot know about:
  a params key or a code file that the target's job reads (hearflow.workflow.dvcgen.forcing) changed
  since dvc.lock *after* the target was written (a change Snakemake already built, as in
  `snakemake --profile slurm` followed by `dvc repro`, is not built again; a change to one
  configuration forces that configuration's jobs, not the whole stage's);
- when it succeeds, a record (`.dvc/tmp/hearflow-dvcrun.json`) names the DVC process and the
  batch, and every later stage command of the same DVC process whose stage is in the batch
  only checks that its outputs exist: DVC then caches them and writes dvc.lock as usual.

Outputs are `persist: true` in dvc.yaml, so DVC does not delete what the batch built before
it reaches a stage. DVC still decides by content which stages run, records every output in
its cache and dvc.lock, and `dvc status` is as precise as before. `dvc repro <targets>`,
`--single-item` and any run this module cannot place (no DVC process found) build the
stage's own targets only, as one stage; `dvc repro --force` forces every stage it builds.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from hearflow.workflow import locks, outcheck
from hearflow.workflow.dvcfile import parse_cmd, stage_paths
from hearflow.workflow.outcheck import built_at

SNAKEMAKE = [sys.executable, "-m", "snakemake", "--rerun-triggers", "params", "input", "code", "software-env"]
RECORD = Path(".dvc") / "tmp" / "hearflow-dvcrun.json"
PARAMS_FILE = "params.yaml"


@dataclass
class Stage:
    """One dvc.yaml stage as this module needs it."""

    name: str
    rules: list[str]
    targets: list[str]
    outs: list[str]
    deps: list[str]
    params: list[str] | None  # None: the whole params file
    upstream: set[str] = field(default_factory=set)


def load_stages(root: Path) -> dict[str, Stage]:
    """dvc.yaml's stages, in file order, with the stages each one depends on."""
    raw = (yaml.safe_load((root / "dvc.yaml").read_text()) or {}).get("stages", {})
    stages: dict[str, Stage] = {}
    for name, st in raw.items():
        rules, targets = parse_cmd(st.get("cmd", ""))
        params = st.get("params")
        keys: list[str] | None = []
        for p in params or []:
            if isinstance(p, dict):  # {params.yaml: null}: every key
                keys = None
                break
            keys.append(p)
        outs = [o for k in ("outs", "metrics", "plots") for o in stage_paths(st.get(k, []))]
        stages[name] = Stage(name, rules, targets, outs, list(st.get("deps", [])), keys)
    owner = {o: s.name for s in stages.values() for o in s.outs}
    for st in stages.values():
        for dep in st.deps:
            up = owner.get(dep) or next((n for o, n in owner.items() if dep.startswith(o + "/")), None)
            if up and up != st.name:
                st.upstream.add(up)
    return stages


def downstream(stages: dict[str, Stage], names: Iterable[str]) -> set[str]:
    """`names` and every stage that depends on them, transitively."""
    out, todo = set(), list(names)
    while todo:
        name = todo.pop()
        if name not in out:
            out.add(name)
            todo += [s.name for s in stages.values() if name in s.upstream]
    return out


def _dotted(d: dict, key: str):
    for part in key.split("."):
        if not isinstance(d, dict) or part not in d:
            return None
        d = d[part]
    return d


def reasons(stage: Stage, lock: dict | None, params: dict, root: Path, produced: set[str] = frozenset()) -> dict:
    """The changes of a stage since dvc.lock that can be seen without hashing directories:
    `new` (no lock entry), `missing` (outputs absent), `params` (keys whose value changed),
    `code` (files among its deps, not in `produced` (other stages' outputs), whose md5
    changed). A change
    of an upstream output is left to Snakemake (it compares ages) and to DVC."""
    out: dict = {}
    missing = [o for o in stage.outs if not (root / o).exists()]
    if missing:
        out["missing"] = missing
    if lock is None:
        out["new"] = True
        return out
    locked = (lock.get("params") or {}).get(PARAMS_FILE, {})
    if stage.params is None:
        changed = sorted(k for k in set(locked) | set(params) if locked.get(k) != params.get(k))
    else:
        changed = [k for k in stage.params if locked.get(k) != _dotted(params, k)]
    if changed:
        out["params"] = changed
    hashes = {d["path"]: d.get("md5") for d in lock.get("deps", [])}
    code = []
    for dep in stage.deps:
        path = root / dep
        if dep in hashes and dep not in produced and path.is_file() and hashes[dep] != outcheck.file_md5(path):
            code.append(dep)
    if code:
        out["code"] = code
    return out


def job_detail(root: Path) -> dict[str, tuple[list[str] | None, list[str]]]:
    """{target: (params keys or None for every key, code files)}: what the job writing each
    stage target depends on (hearflow.workflow.dvcgen.forcing), for a hearflow checkout at `root`;
    {} for any other project (every target then counts with its whole stage's keys and code)."""
    if not ((root / "rules").is_dir() and (root / "Snakefile").is_file() and (root / PARAMS_FILE).is_file()):
        return {}
    from hearflow.workflow import dvcgen
    from hearflow.workflow.config import load_params

    detail = dvcgen.forcing(load_params(root / PARAMS_FILE), root)
    return {t: (None if any(isinstance(k, dict) for k in keys) else keys, code) for t, (keys, code) in detail.items()}


def must_force(stage: Stage, why: dict, root: Path, detail: dict | None = None) -> list[str]:
    """The targets of a stage Snakemake must be told to rebuild: a params key or code file the
    target's job depends on (`detail`, else the whole stage's) changed since dvc.lock, and
    Snakemake did not write the target after that change (Snakemake does not see every
    params key a job reads, it has no records after `dvc pull`, and it does not track the
    hearflow modules a script imports). Targets that Snakemake wrote after the change
    (`snakemake --profile slurm`, then `dvc repro`) are kept, and so is every target of a job
    the change does not touch (one configuration's settings force that configuration's
    ensembles only; Snakemake reruns what depends on them). File modification times alone
    would not do: a dry run after `dvc pull` settles them (hearflow.workflow.dvcgen.settle_mtimes)."""
    code_changed = set(why.get("code", []))
    keys_changed = set(why.get("params", []))
    if not code_changed and not keys_changed:
        return []
    detail = detail or {}
    forced = []
    for target in stage.targets:
        keys, code = detail.get(target, (stage.params, stage.deps))
        touched = [c for c in code if c in code_changed]
        if keys_changed and (keys is None or keys_changed & set(keys)):
            touched.append(PARAMS_FILE)
        if not touched or not (root / target).exists():
            continue  # untouched, or missing: Snakemake builds it anyway
        built = built_at(root, target)
        if built is None or max((root / c).stat().st_mtime for c in touched) >= built:
            forced.append(target)
    return forced


def dvc_process(pid: int | None = None) -> tuple[str, list[str]] | None:
    """(identity, argv) of the DVC process that runs this command: the nearest ancestor whose
    command line is `dvc ...` (Linux /proc); identity is its pid and start time."""
    pid = os.getppid() if pid is None else pid
    for _ in range(16):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")[:-1]
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return None
        fields = stat.rsplit(")", 1)[1].split()
        for i, word in enumerate(argv[:3]):
            if Path(word).name == "dvc" or (word == "-m" and argv[i + 1 : i + 2] == ["dvc"]):
                rest = argv[argv.index(word) + (2 if word == "-m" else 1) :]
                return f"{pid}:{fields[19]}", rest
        pid = int(fields[1])  # the parent
        if pid <= 1:
            return None
    return None


@dataclass
class ReproMode:
    whole: bool  # a repro of the whole pipeline (no targets, not --single-item)
    force: bool


def repro_mode(argv: list[str]) -> ReproMode:
    """What the DVC command asked for, read with DVC's own parser."""
    try:
        from dvc.cli import parse_args

        args = parse_args(argv)
    except (SystemExit, Exception):
        return ReproMode(whole=False, force=False)
    if getattr(args, "cmd", None) not in ("repro", "run", "exec-run"):  # exec-run: queued/--temp experiments
        return ReproMode(whole=False, force=False)
    targets = getattr(args, "targets", None) or []
    partial = bool(targets) or getattr(args, "single_item", False) or getattr(args, "downstream", False)
    return ReproMode(whole=not partial, force=bool(getattr(args, "force", False)))


def _read_record(root: Path) -> dict:
    try:
        return json.loads((root / RECORD).read_text())
    except (OSError, ValueError):
        return {}


def snakemake_cmd(rules: Iterable[str], targets: list[str], force: list[str]) -> list[str]:
    cmd = [*SNAKEMAKE, "--allowed-rules", *sorted(set(rules))]
    if force:
        cmd += ["--forcerun", *force]
    return [*cmd, "--", *targets]


def plan(stages: dict[str, Stage], current: str, root: Path, mode: ReproMode) -> tuple[list[str], list[str]]:
    """(batch, forced): the stages to build now, in dvc.yaml order, and the targets to force."""
    lock = (
        (yaml.safe_load((root / "dvc.lock").read_text()) or {}).get("stages", {})
        if (root / "dvc.lock").is_file()
        else {}
    )
    params = yaml.safe_load((root / PARAMS_FILE).read_text()) or {}
    produced = {o for s in stages.values() for o in s.outs}
    why = {n: reasons(s, lock.get(n), params, root, produced) for n, s in stages.items()}
    # outputs that differ from dvc.lock and that Snakemake did not write (a damaged cache file
    # checked out, hearflow.workflow.outcheck): their stages join the batch, they are rebuilt
    checked = stages if mode.whole else {current: stages[current]}
    bad = outcheck.damaged(root, {n: (s.outs, lock.get(n)) for n, s in checked.items()})
    for n, outs in bad.items():  # so that DVC stores the rebuilt outputs anew
        for out in outs:
            outcheck.purge_cache(root, outcheck.locked_md5(lock.get(n), out))
    if bad:
        print(
            f"hearflow.workflow.dvcrun: {sum(map(len, bad.values()))} output(s) differ from dvc.lock and were not "
            f"written by Snakemake (a damaged DVC cache file checked out?): {', '.join(sum(bad.values(), []))}; "
            "building them again",
            flush=True,
        )
    seeds = [current] + ([n for n, w in why.items() if w] + list(bad) if mode.whole else [])
    members = downstream(stages, seeds) if mode.whole else {current}
    batch = [n for n in stages if n in members]
    if mode.force:
        return batch, [t for n in batch for t in stages[n].targets]
    detail = job_detail(root) if any(why[n].get("code") or why[n].get("params") for n in batch) else {}
    forced = [t for n in batch for t in must_force(stages[n], why[n], root, detail)]
    return batch, forced + [o for outs in bad.values() for o in outs if o not in forced]


def build(stages: dict[str, Stage], batch: list[str], force: list[str]) -> int:
    targets = [t for n in batch for t in stages[n].targets]
    cmd = snakemake_cmd((r for n in batch for r in stages[n].rules), targets, force)
    forced = [n for n in batch if set(stages[n].targets) & set(force)]
    print(
        f"hearflow.workflow.dvcrun: one Snakemake run for {len(batch)} stage(s)"
        + (f", forcing {len(force)} target(s) of {', '.join(forced)}" if force else "")
        + (f" (profile {os.environ['SNAKEMAKE_PROFILE']})" if os.environ.get("SNAKEMAKE_PROFILE") else ""),
        flush=True,
    )
    start = time.monotonic()
    rc = subprocess.call(cmd)
    print(
        f"hearflow.workflow.dvcrun: the Snakemake call ended (exit {rc}) after {time.monotonic() - start:.1f} s",
        flush=True,
    )
    return rc


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rules", nargs="+", required=True, help="the rules the stage runs")
    parser.add_argument("targets", nargs="+", help="the stage's Snakemake targets")
    args = parser.parse_args(argv)
    root = Path(os.environ.get("DVC_ROOT") or Path.cwd())
    name = os.environ.get("DVC_STAGE", "").rpartition(":")[2]  # dvc.yaml:name in subdirectories
    proc = dvc_process()
    stages = load_stages(root) if (root / "dvc.yaml").is_file() else {}
    if not name or name not in stages or proc is None:  # by hand, or not placeable: this stage only
        locks.recover(root)
        return subprocess.call(snakemake_cmd(args.rules, args.targets, []))
    identity, dvc_argv = proc
    record = _read_record(root)
    if record.get("dvc") == identity and name in record.get("stages", []):
        missing = [o for o in stages[name].outs if not (root / o).exists()]
        if not missing:
            print(f"hearflow.workflow.dvcrun: {name}: built by this run's Snakemake call", flush=True)
            return 0
    batch, forced = plan(stages, name, root, repro_mode(dvc_argv))
    locks.recover(root)  # a lock a killed `dvc repro` left (hearflow.workflow.locks)
    rc = build(stages, batch, forced)
    if rc == 0:
        (root / RECORD).parent.mkdir(parents=True, exist_ok=True)
        tmp = root / RECORD.with_suffix(".tmp")
        earlier = record.get("stages", []) if record.get("dvc") == identity else []  # an earlier batch of this run
        tmp.write_text(json.dumps({"dvc": identity, "stages": list(dict.fromkeys(earlier + batch))}, indent=1))
        tmp.replace(root / RECORD)
    return rc


if __name__ == "__main__":
    sys.exit(main())
