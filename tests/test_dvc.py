"""DVC over the Snakefile: generated stages that match Snakemake's jobs, and, in temporary git
repositories with a reduced demo, repro / push / pull / experiments / diffs across commits."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from hearflow.workflow import dvcgen
from hearflow.workflow.config import load_params, make_plan
from hearflow.workflow.keys import deep_merge
from tests.conftest import ROOT, copy_checkout
from tests.test_workflow import REDUCED

BIN = Path(sys.executable).parent  # the venv: `snakemake` in stage commands, `dvc`
GIT_ID = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
# The reduced demo of the workflow tests, smaller still: two configurations (CREPE, and its
# ensemble with the HuBERT stand-in) on two tasks (scene and event): the data, stand-in, two
# embed (one per model), ensemble, probe, layer-wise probe and report stages.
CONFIGS = ["crepe", "avg_xc"]
TASKS = ["demo_tones-v1-full", "demo_events-v1-full"]
SMALL = deep_merge(REDUCED, {"suites": {"demo": {"configs": CONFIGS, "tasks": TASKS}}})
# A probe setting of the reduced demo (a suite override), changed by the experiment below.
PROBE_KEY = "suites.demo.overrides.probe.grid.hidden_dim"


def _env(repo: Path, **extra: str) -> dict:
    env = dict(os.environ, PYTHONPATH=str(repo / "src"), PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}", **GIT_ID)
    env.pop("SNAKEMAKE_PROFILE", None)
    env.update(extra)
    return env


def _run(repo: Path, *cmd: str, check: bool = True, **env: str) -> subprocess.CompletedProcess:
    res = subprocess.run(list(cmd), cwd=repo, env=_env(repo, **env), capture_output=True, text=True)
    if check and res.returncode != 0:
        pytest.fail(f"{' '.join(cmd)} failed ({res.returncode}):\n{res.stdout[-5000:]}\n{res.stderr[-5000:]}")
    return res


def _dvc(repo: Path, *args: str, **kw) -> subprocess.CompletedProcess:
    return _run(repo, str(BIN / "dvc"), *args, **kw)


def _git(repo: Path, *args: str) -> subprocess.CompletedProcess:
    return _run(repo, "git", *args)


def _ran(res: subprocess.CompletedProcess) -> list[str]:
    """Stages a `dvc repro` / `dvc exp run` ran, in order."""
    return re.findall(r"^Running stage '([^']+)'", res.stdout + res.stderr, flags=re.M)


def _make_repo(dest: Path) -> Path:
    """A git repository holding a clean copy of the checkout, set to the reduced demo, with
    dvc.yaml regenerated for it (fewer configs: fewer stages)."""
    copy_checkout(dest, exclude=("dvc.lock", ".dvc/cache", ".dvc/tmp"))
    params = deep_merge(yaml.safe_load((dest / "params.yaml").read_text()), SMALL)
    (dest / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    _run(dest, sys.executable, "-m", "hearflow.workflow.dvcgen")
    _git(dest, "init", "-q", "-b", "main")
    _git(dest, "add", "-A")
    _git(dest, "commit", "-qm", "reduced demo")
    return dest


@pytest.fixture(scope="module")
def built(small_demo_built):
    """The reduced demo reproduced once by `dvc repro`, its results committed (conftest: shared
    with the Slurm and fault tests)."""
    return small_demo_built


@pytest.fixture(scope="module")
def remote(built, tmp_path_factory):
    """A local DVC remote holding the build; the repository's default, committed."""
    repo, _ = built
    path = tmp_path_factory.mktemp("remote")
    _dvc(repo, "remote", "add", "-d", "local", str(path))
    _dvc(repo, "push")
    _git(repo, "commit", "-qam", "local remote")
    return path


def _pulled_clone(repo: Path, dest: Path) -> Path:
    _run(repo.parent, "git", "clone", "-q", str(repo), str(dest))
    _dvc(dest, "pull")
    return dest


# --- dvc.yaml and the Snakefile agree -------------------------------------------------------


def test_committed_dvc_yaml_is_generated_from_params():
    res = _run(ROOT, sys.executable, "-m", "hearflow.workflow.dvcgen", "--check", check=False)
    assert res.returncode == 0, res.stderr


def _dry_run_jobs(repo: Path, *args: str) -> list[tuple[str, set[str], set[str]]]:
    """(rule, inputs, outputs) of every job `snakemake -n` plans from scratch."""
    res = _run(repo, sys.executable, "-m", "snakemake", "-n", *args)
    jobs, current = [], None
    for line in res.stdout.splitlines():
        if m := re.match(r"^(?:local)?rule (\w+):$", line):
            current = [m.group(1), set(), set()]
            jobs.append(current)
        elif current and (m := re.match(r"^    (input|output): (.*)$", line)):
            current[1 if m.group(1) == "input" else 2].update(m.group(2).split(", "))
        elif not line.startswith("    "):
            current = None
    return [(r, i, o) for r, i, o in jobs if o]


def _stage_paths(entries: list) -> set[str]:
    return {next(iter(e)) if isinstance(e, dict) else e for e in entries}


@pytest.mark.parametrize("suite", ["demo", "hear2021"])
def test_stages_partition_the_snakemake_jobs(tmp_path, suite):
    """Every job of the DAG belongs to exactly one stage: the stage's outputs are the outputs
    of its jobs, its rules are allowed in its command, its data deps are exactly the inputs
    its jobs take from other stages, and its params keys exist."""
    repo = tmp_path / "repo"
    copy_checkout(repo)
    params = load_params(repo / "params.yaml", {"suite": suite})
    stages = dvcgen.stages(params, repo)
    jobs = _dry_run_jobs(repo, "--config", f"suite={suite}")

    owner = {}
    for name, st in stages.items():
        outs = _stage_paths(st.get("outs", []) + st.get("metrics", []) + st.get("plots", []))
        targets = st["cmd"].split(" -- ", 1)[1].split()
        assert set(targets) == outs, name
        for path in outs:
            assert path not in owner, f"{path}: output of {owner.get(path)} and {name}"
            owner[path] = name
    by_stage: dict[str, list] = {name: [] for name in stages}
    for rule, inputs, outputs in jobs:
        names = {owner.get(o) for o in outputs}
        assert len(names) == 1 and None not in names, (rule, outputs)
        by_stage[names.pop()].append((rule, inputs, outputs))
    flat = _flatten(params)
    for name, st in stages.items():
        mine = by_stage[name]
        allowed = st["cmd"].split("--rules ", 1)[1].split(" -- ")[0].split()
        assert {r for r, _, _ in mine} <= set(allowed), name
        produced = set().union(*(o for _, _, o in mine))
        assert produced == _stage_paths(st.get("outs", []) + st.get("metrics", []) + st.get("plots", [])), name
        upstream = set().union(*(i for _, i, _ in mine)) - produced
        data_deps = {d for d in st["deps"] if d.startswith(("data/", "results/", "reports/"))}
        assert data_deps == upstream, name
        code_deps = set(st["deps"]) - data_deps
        assert all((repo / d).is_file() for d in code_deps), name
        keys = [k for k in st.get("params", []) if not isinstance(k, dict)]  # {params.yaml: None}: every key
        assert all(k == {"params.yaml": None} for k in st.get("params", []) if isinstance(k, dict)), name
        missing = [k for k in keys if k not in flat]
        assert not missing, (name, missing)
    if suite == "demo":
        # one stage per phase, embeddings one per model (each has its own code and keys)
        assert list(stages) == [
            "data",
            "standin",
            *[f"embed-{m}" for m in make_plan(params).models],
            "ensemble",
            "probe",
            "probe_layers",
            "report",
        ]


def _flatten(d: dict, prefix: str = "") -> set[str]:
    keys = set()
    for k, v in d.items():
        keys.add(prefix + str(k))
        if isinstance(v, dict):
            keys |= _flatten(v, f"{prefix}{k}.")
    return keys


def test_probe_stages_list_only_probe_keys():
    params = load_params(ROOT / "params.yaml")
    st = dvcgen.stages(params)["probe"]
    assert st["params"] == sorted(
        ["seed", "probe.engine"]
        + [
            f"probe.grid.{k}"
            for k in ("hidden_layers", "dropout", "lr", "initialization", "batch_size", "check_val_every_n_epoch")
        ]
        + ["suites.demo.overrides.probe.max_grid_points", "suites.demo.overrides.probe.seeds", "probe.bootstrap"]
        + [f"suites.demo.overrides.probe.grid.{k}" for k in ("hidden_dim", "max_epochs", "patience")]
        # probe.linear leaf by leaf: the demo overrides its epochs
        + [f"probe.linear.{k}" for k in ("lr", "batch_size", "lr_decay", "weight_decay")]
        + ["suites.demo.overrides.probe.linear.epochs"]
        + ["probe.heareval_python", "probe.device"]
        + ["numerics"]  # the kernel and thread pins (hearflow.core.numerics): every computing stage
    )
    assert not any(k.startswith("probe.layers") for k in st["params"])  # the layer probes' own stages
    assert st["cmd"].startswith(
        "python -m hearflow.workflow.dvcrun --rules probe_wide -- "
    )  # the demo: wide probe jobs
    narrow = deep_merge(params, {"suites": {"demo": {"probe_jobs": "narrow"}}})
    assert dvcgen.stages(narrow)["probe"]["cmd"].startswith("python -m hearflow.workflow.dvcrun --rules probe -- ")
    assert "--profile" not in st["cmd"] and "--cores" not in st["cmd"]
    assert all(next(iter(o.values())) == {"persist": True} for o in st["outs"])  # the batch's outputs stay


# --- the reduced demo through DVC ------------------------------------------------------------


@pytest.mark.e2e
def test_repro_runs_everything_then_nothing(built):
    repo, first = built
    stages = yaml.safe_load((repo / "dvc.yaml").read_text())["stages"]
    assert sorted(_ran(first)) == sorted(stages)
    # hearflow.workflow.dvcrun: one Snakemake call built every stage; the other commands found theirs
    out = first.stdout + first.stderr
    assert out.count(f"hearflow.workflow.dvcrun: one Snakemake run for {len(stages)} stage(s)") == 1, out[-3000:]
    assert out.count("built by this run's Snakemake call") == len(stages) - 1
    assert json.loads((repo / "reports" / "metrics.json").read_text()).keys() == set(CONFIGS)
    again = _dvc(repo, "repro")
    assert _ran(again) == []
    assert "Data and pipelines are up to date." in _dvc(repo, "status").stdout


@pytest.mark.e2e
def test_editing_embed_py_changes_embed_stages_only(built):
    """After a change to embed.py, `dvc status` names the embedding stages and no other: the
    probe stages depend on the embeddings' content, not on embedding code."""
    repo, _ = built
    embed = repo / "src" / "hearflow" / "embed" / "job.py"
    text = embed.read_text()
    try:
        embed.write_text(text + "\n# a comment: a new version of the file\n")
        status = json.loads(_dvc(repo, "status", "--json").stdout)
    finally:
        embed.write_text(text)
    stages = yaml.safe_load((repo / "dvc.yaml").read_text())["stages"]
    assert set(status) == {n for n in stages if n.startswith("embed-")}
    assert all(change == [{"changed deps": {"src/hearflow/embed/job.py": "modified"}}] for change in status.values())
    assert "Data and pipelines are up to date." in _dvc(repo, "status").stdout


@pytest.mark.e2e
def test_profile_changes_no_stage_hash(built, tmp_path):
    """Running a stage under another Snakemake profile rewrites nothing in dvc.lock."""
    repo, _ = built
    profile = tmp_path / "other"
    profile.mkdir()
    (profile / "config.yaml").write_text("cores: 1\nkeep-going: true\nprintshellcmds: false\n")
    lock = (repo / "dvc.lock").read_text()
    res = _dvc(repo, "repro", "--force", "--single-item", "report", SNAKEMAKE_PROFILE=str(profile))
    assert _ran(res) == ["report"]
    assert str(profile) in res.stdout + res.stderr  # Snakemake announced the profile it used
    after = yaml.safe_load((repo / "dvc.lock").read_text())["stages"]
    before = yaml.safe_load(lock)["stages"]
    assert after.keys() == before.keys()

    # Outputs too, but report.html, which names the commit it was generated at (HEAD moved
    # since the first run: the remote was committed).
    def outs(stage: dict) -> list:
        return [o for o in stage.get("outs", []) if o["path"] != "reports/report.html"]

    for name, stage in before.items():  # commands, deps and params: the stage hashes
        assert {k: v for k, v in after[name].items() if k != "outs"} == {k: v for k, v in stage.items() if k != "outs"}
        assert outs(after[name]) == outs(stage), name
    assert "Data and pipelines are up to date." in _dvc(repo, "status").stdout


@pytest.mark.e2e
def test_push_clone_pull_needs_no_rerun(built, remote, tmp_path):
    repo, _ = built
    clone = _pulled_clone(repo, tmp_path / "clone")
    assert (clone / "results" / "members" / "crepe_tiny" / "demo_tones-v1-full").is_dir()
    assert "Data and pipelines are up to date." in _dvc(clone, "status").stdout
    assert _ran(_dvc(clone, "repro")) == []
    plain = _run(clone, str(BIN / "snakemake"), "-n")  # no .snakemake/ metadata in the clone
    assert "Nothing to be done" in plain.stdout + plain.stderr, plain.stdout[-3000:]


def _exp_rows(node):
    """(params, metrics) of every revision in `dvc exp show --json`, however nested."""
    if isinstance(node, dict):
        data = node.get("data")
        if isinstance(data, dict) and "params" in data:
            yield data["params"]["params.yaml"]["data"], data.get("metrics") or {}
        for value in node.values():
            yield from _exp_rows(value)
    elif isinstance(node, list):
        for value in node:
            yield from _exp_rows(value)


def _get(d: dict, dotted: str):
    for key in dotted.split("."):
        d = d[key]
    return d


@pytest.mark.e2e
def test_experiment_reruns_probe_and_report_and_diffs_across_commits(built, remote, tmp_path):
    repo, _ = built
    clone = _pulled_clone(repo, tmp_path / "clone")

    exp = _dvc(clone, "exp", "run", "-S", f"{PROBE_KEY}=[16]")
    assert sorted(_ran(exp)) == ["probe", "report"]
    shown = list(_exp_rows(json.loads(_dvc(clone, "exp", "show", "--json").stdout)))
    widths = [_get(params, PROBE_KEY) for params, _ in shown]
    assert [32] in widths and widths.count([16]) >= 2  # baseline; workspace and experiment
    assert all(set(metrics["reports/metrics.json"]["data"]) == set(CONFIGS) for _, metrics in shown)

    _git(clone, "add", "-A")
    _git(clone, "commit", "-qm", "narrower probe")
    params = json.loads(_dvc(clone, "params", "diff", "HEAD~1", "--json").stdout)["params.yaml"]
    assert list(params) == [PROBE_KEY]  # lists come back as their text
    assert {k: yaml.safe_load(str(v)) for k, v in params[PROBE_KEY].items()} == {"old": [32], "new": [16]}

    metrics = json.loads(_dvc(clone, "metrics", "diff", "HEAD~1", "--all", "--json").stdout)["reports/metrics.json"]
    pairs = {tuple(k.split(".")[:2]) for k in metrics}
    assert pairs == {(c, t) for c in CONFIGS for t in TASKS}  # per config, per task
    assert any(v.get("diff") for v in metrics.values()), "no metric changed"
    changed = _dvc(clone, "metrics", "diff", "HEAD~1").stdout
    assert "reports/metrics.json" in changed

    out = tmp_path / "plots"
    _dvc(clone, "plots", "diff", "HEAD~1", "-o", str(out))
    html = (out / "index.html").read_text()
    assert "Test score (each task's first metric) per configuration" in html
    for rev in ("HEAD~1", "workspace"):  # one data point per task, config and revision
        assert html.count(f'"rev": "{rev}"') >= len(CONFIGS) * len(TASKS), rev


def _job_records(repo: Path) -> list[dict]:
    """Every job record (hearflow.core.smk: one per job attempt) in the logs of a workspace."""
    from hearflow.core.smk import read_records

    return [r for log in sorted((repo / "logs").rglob("*.log")) for r in read_records(log)]


def _set_config_dim(repo: Path, cfg: str, dim: int) -> None:
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["configs"][cfg]["dim"] = dim
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


@pytest.mark.e2e
def test_a_one_config_change_reruns_that_config_only(built, remote, tmp_path):
    """configs.avg_xc.dim changed: `dvc repro`, then plain `snakemake`, run avg_xc's
    ensembles and its one wide probe job (which computes both tasks anew) and the report;
    no job of the other configuration (crepe) runs, and its scores keep their bytes. Job
    records (one per job attempt, in logs/) say what ran."""
    repo, _ = built
    clone = _pulled_clone(repo, tmp_path / "clone")
    crepe = {t: (clone / "results" / "probe" / "crepe" / t / "scores.json").read_bytes() for t in TASKS}
    report_rules = {
        "metrics",
        "table",
        "figure_scores",
        "figure_ablations",
        "figure_tsne",
        "figure_layers",
        "report_html",
        "score_plot",
    }

    def check(new: list[dict]) -> None:
        ran = sorted((r["rule"], r["wildcards"].get("cfg"), r["wildcards"].get("task")) for r in new)
        assert [x for x in ran if x[0] == "ensemble"] == sorted(("ensemble", "avg_xc", t) for t in TASKS), ran
        assert [x for x in ran if x[0].startswith("probe")] == [("probe_wide", "avg_xc", None)], ran
        assert {x[0] for x in ran} <= {"ensemble", "probe_wide"} | report_rules, ran
        log = (clone / "logs" / "probe" / "avg_xc.log").read_text()
        assert all(f"{t}: computed" in log.rsplit("hearflow-job ", 1)[1] for t in TASKS), log[-2000:]
        assert {t: (clone / "results" / "probe" / "crepe" / t / "scores.json").read_bytes() for t in TASKS} == crepe

    _set_config_dim(clone, "avg_xc", 128)
    res = _dvc(clone, "repro")
    assert sorted(_ran(res)) == ["ensemble", "probe", "report"]
    check(_job_records(clone))

    seen = {json.dumps(r, sort_keys=True) for r in _job_records(clone)}
    _set_config_dim(clone, "avg_xc", 64)
    _run(clone, sys.executable, "-m", "snakemake", "--cores", "2")
    check([r for r in _job_records(clone) if json.dumps(r, sort_keys=True) not in seen])


def test_settle_mtimes_orders_outputs_by_stage_once(tmp_path):
    stages = {
        "up": {"cmd": "snakemake -- a b/dir", "outs": ["b/dir", "a"]},
        "down": {
            "cmd": "snakemake -- c.json t.md",
            "outs": [{"t.md": {"cache": False}}],
            "metrics": [{"c.json": {"cache": False}}],
        },
    }
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump({"stages": stages}, sort_keys=False))
    files = ["t.md", "c.json", "b/dir/x", "b/dir/y", "a"]  # written downstream first
    for i, name in enumerate(files):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(name)
        os.utime(tmp_path / name, ns=(10**18 - i, 10**18 - i))
    assert dvcgen.settle_mtimes(tmp_path) == 6  # five files and the directory

    order = ["a", "b/dir/x", "b/dir/y", "b/dir", "c.json", "t.md"]
    times = [(tmp_path / n).stat().st_mtime_ns for n in order]
    assert times == sorted(times) and len(set(times)) == len(times)
    assert [(tmp_path / n).read_text() for n in files] == files

    (tmp_path / ".snakemake" / "metadata").mkdir(parents=True)
    assert dvcgen.settle_mtimes(tmp_path) == 6  # an empty record folder (a dry run) is no record
    (tmp_path / ".snakemake" / "metadata" / "YQ==").write_text("{}")
    os.utime(tmp_path / "a", ns=(10**18, 10**18))
    assert dvcgen.settle_mtimes(tmp_path) == 0 and (tmp_path / "a").stat().st_mtime_ns == 10**18
