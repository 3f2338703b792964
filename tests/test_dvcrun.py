"""hearflow.workflow.dvcrun, the command of every dvc.yaml stage, on a toy pipeline with real DVC and
Snakemake: one Snakemake call per `dvc repro`, what it forces, and what it leaves alone."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from hearflow.workflow import dvcrun
from tests.conftest import ROOT

BIN = Path(sys.executable).parent
SNAKEFILE = """\
configfile: "params.yaml"

rule all:
    input: "out/b", "out/c.txt"

rule a:
    output: "out/a.txt"
    params: x=config["x"]
    shell: "python tool.py {params.x} > {output}"

rule b:
    input: "out/a.txt"
    output: directory("out/b")
    shell: "mkdir -p {output} && cat {input} {input} > {output}/b.txt"

rule c:
    output: "out/c.txt"
    params: y=config["y"]
    shell: "echo {params.y} > {output}"
"""
RUN = "python -m hearflow.workflow.dvcrun --rules"
DVC_YAML = {
    "stages": {
        "a": {
            "cmd": f"{RUN} a -- out/a.txt",
            "deps": ["tool.py"],
            "params": ["x"],
            "outs": [{"out/a.txt": {"persist": True}}],
        },
        "b": {"cmd": f"{RUN} b -- out/b", "deps": ["out/a.txt"], "outs": [{"out/b": {"persist": True}}]},
        "c": {"cmd": f"{RUN} c -- out/c.txt", "params": ["y"], "outs": [{"out/c.txt": {"persist": True}}]},
    }
}


def _env() -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}")
    env.pop("SNAKEMAKE_PROFILE", None)
    env.update(GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@t", GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@t")
    return env


def _run(repo: Path, *cmd: str) -> str:
    res = subprocess.run(list(cmd), cwd=repo, env=_env(), capture_output=True, text=True)
    assert res.returncode == 0, f"{cmd} failed:\n{res.stdout[-4000:]}\n{res.stderr[-4000:]}"
    return res.stdout + res.stderr


def _repro(repo: Path, *args: str) -> tuple[list[str], list[str], str]:
    """(stages DVC ran, rules Snakemake ran, output) of one `dvc repro`."""
    out = _run(repo, str(BIN / "dvc"), "repro", *args)
    ran = re.findall(r"^Running stage '([^']+)'", out, flags=re.M)
    jobs = re.findall(r"^(?:local)?rule (\w+):$", out, flags=re.M)
    return ran, jobs, out


def _set(repo: Path, **params) -> None:
    path = repo / "params.yaml"
    time.sleep(0.01)
    path.write_text(yaml.safe_dump({**yaml.safe_load(path.read_text()), **params}))


@pytest.fixture
def toy(tmp_path) -> Path:
    repo = tmp_path / "toy"
    (repo / "profiles" / "default").mkdir(parents=True)
    (repo / "profiles" / "default" / "config.yaml").write_text("cores: 2\nprintshellcmds: true\n")
    (repo / "Snakefile").write_text(SNAKEFILE)
    (repo / "tool.py").write_text("import sys\nprint('a', sys.argv[1])\n")
    (repo / "params.yaml").write_text("x: 1\ny: 1\n")
    (repo / "dvc.yaml").write_text(yaml.safe_dump(DVC_YAML, sort_keys=False))
    _run(repo, "git", "init", "-q")
    _run(repo, str(BIN / "dvc"), "init", "-q")
    _run(repo, "git", "add", "-A")
    _run(repo, "git", "commit", "-qm", "toy")
    return repo


def test_one_snakemake_call_builds_every_stage_of_a_repro(toy):
    ran, jobs, out = _repro(toy)
    assert ran == ["a", "b", "c"]
    assert sorted(jobs) == ["a", "b", "c"]
    assert out.count("hearflow.workflow.dvcrun: one Snakemake run for 3 stage(s)") == 1
    assert out.count("built by this run's Snakemake call") == 2  # b and c found their outputs
    assert (toy / "out" / "b" / "b.txt").read_text() == "a 1\na 1\n"
    assert _repro(toy)[:2] == ([], [])
    assert "up to date" in _run(toy, str(BIN / "dvc"), "status")
    record = json.loads((toy / dvcrun.RECORD).read_text())
    assert record["stages"] == ["a", "b", "c"] and record["dvc"].split(":")[0].isdigit()


def test_a_params_change_runs_that_stage_and_what_depends_on_it(toy):
    _repro(toy)
    _set(toy, x=2)
    ran, jobs, out = _repro(toy)
    assert ran == ["a", "b"] and sorted(jobs) == ["a", "b"]
    assert (toy / "out" / "b" / "b.txt").read_text() == "a 2\na 2\n"
    assert "up to date" in _run(toy, str(BIN / "dvc"), "status")


def test_a_code_change_snakemake_cannot_see_is_forced(toy):
    """tool.py is a DVC dep of stage a that Snakemake does not track: dvcrun forces a."""
    _repro(toy)
    (toy / "tool.py").write_text("import sys\nprint('A', sys.argv[1])\n")
    dry = _run(toy, sys.executable, "-m", "snakemake", "-n", "--rerun-triggers", "params", "input", "code")
    assert "Nothing to be done" in dry  # Snakemake alone would keep the old output
    ran, jobs, out = _repro(toy)
    assert ran == ["a", "b"] and sorted(jobs) == ["a", "b"]
    assert "forcing 1 target(s) of a" in out
    assert (toy / "out" / "a.txt").read_text() == "A 1\n"


def test_what_snakemake_built_is_not_built_again(toy):
    """`snakemake` after a change, then `dvc repro`: DVC records the new outputs, no job runs."""
    _repro(toy)
    _set(toy, x=3)
    _run(toy, sys.executable, "-m", "snakemake")
    assert (toy / "out" / "a.txt").read_text() == "a 3\n"
    ran, jobs, out = _repro(toy)
    assert ran == ["a", "b"] and jobs == []
    assert "Nothing to be done" in out and "forcing" not in out
    assert "up to date" in _run(toy, str(BIN / "dvc"), "status")


def test_outputs_without_snakemake_records_are_forced_after_a_change(toy):
    """As after `dvc pull` in a fresh clone: no Snakemake records, and a dry run has reset the
    file ages (hearflow.workflow.dvcgen.settle_mtimes does so); a params change must still rebuild."""
    _repro(toy)
    _run(toy, "rm", "-rf", ".snakemake")
    _set(toy, y=5)
    for out in ("out/a.txt", "out/b/b.txt", "out/b", "out/c.txt"):
        os.utime(toy / out)  # newer than params.yaml now
    ran, jobs, out = _repro(toy)
    assert ran == ["c"] and jobs == ["c"] and "forcing 1 target(s) of c" in out
    assert (toy / "out" / "c.txt").read_text() == "5\n"


def test_single_stage_and_force(toy):
    _repro(toy)
    ran, jobs, out = _repro(toy, "--force", "--single-item", "b")
    assert ran == ["b"] and jobs == ["b"] and "one Snakemake run for 1 stage(s), forcing 1 target(s) of b" in out


def test_plan_and_reasons_read_dvc_lock(toy):
    _repro(toy)
    stages = dvcrun.load_stages(toy)
    assert stages["b"].upstream == {"a"} and stages["a"].upstream == set() == stages["c"].upstream
    assert dvcrun.downstream(stages, ["a"]) == {"a", "b"}
    lock = yaml.safe_load((toy / "dvc.lock").read_text())["stages"]
    params = {"x": 1, "y": 2}
    assert dvcrun.reasons(stages["c"], lock["c"], params, toy) == {"params": ["y"]}
    assert dvcrun.reasons(stages["a"], lock["a"], params, toy) == {}
    assert dvcrun.reasons(stages["a"], None, params, toy) == {"new": True}
    (toy / "out" / "c.txt").unlink()
    assert dvcrun.reasons(stages["c"], lock["c"], params, toy)["missing"] == ["out/c.txt"]
    whole, partial = dvcrun.ReproMode(True, False), dvcrun.ReproMode(False, False)
    _set(toy, y=2)
    assert dvcrun.plan(stages, "a", toy, whole) == (["a", "b", "c"], [])  # c: missing, built anyway
    assert dvcrun.plan(stages, "b", toy, partial) == (["b"], [])


def test_repro_mode_reads_dvc_arguments():
    assert dvcrun.repro_mode(["repro"]) == dvcrun.ReproMode(whole=True, force=False)
    assert dvcrun.repro_mode(["exp", "run", "-S", "x=1"]) == dvcrun.ReproMode(whole=True, force=False)
    assert dvcrun.repro_mode(["repro", "-f"]) == dvcrun.ReproMode(whole=True, force=True)
    assert dvcrun.repro_mode(["repro", "probe"]).whole is False
    assert dvcrun.repro_mode(["repro", "-s", "report"]).whole is False
    assert dvcrun.repro_mode(["status"]).whole is False


def test_built_at_reads_snakemakes_own_records(toy):
    _run(toy, sys.executable, "-m", "snakemake", "out/c.txt")
    built = dvcrun.built_at(toy, "out/c.txt")
    assert built is not None and abs(built - (toy / "out" / "c.txt").stat().st_mtime) < 5
    assert dvcrun.built_at(toy, "out/a.txt") is None
    long = "out/" + "/".join(["d" * 60] * 4) + "/f.txt"  # Snakemake splits its long record names
    (toy / "Snakefile").write_text(SNAKEFILE + f'\nrule long:\n    output: "{long}"\n    shell: "touch {{output}}"\n')
    _run(toy, sys.executable, "-m", "snakemake", long)
    assert dvcrun.built_at(toy, long) is not None


def test_wide_stages_force_only_the_jobs_a_change_touches(tmp_path):
    """The hearflow dvc.yaml: one stage holds every configuration's ensembles (and one every
    probe). A change to one configuration's settings forces that configuration's targets
    alone (hearflow.workflow.dvcgen.forcing: the keys each job reads); a key every job reads forces
    them all; Snakemake then reruns what depends on the forced ones. Outputs here have no
    Snakemake records (as after `dvc pull`), so every touched target is forced."""
    stages = dvcrun.load_stages(ROOT)
    detail = dvcrun.job_detail(ROOT)
    (tmp_path / "params.yaml").write_text("{}\n")
    for stage in (stages["ensemble"], stages["probe"]):
        for target in stage.targets:
            (tmp_path / target).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / target).write_text("")
    ensemble, probe = stages["ensemble"], stages["probe"]
    tasks = ["demo_tones-v1-full", "demo_vowels-v1-full", "demo_mixtures-v1-full", "demo_events-v1-full"]

    one = dvcrun.must_force(ensemble, {"params": ["configs.avg_xc"]}, tmp_path, detail)
    assert one == [f"results/configs/avg_xc/{t}" for t in tasks]
    both = dvcrun.must_force(ensemble, {"params": ["configs.avg_xc", "configs.crepe"]}, tmp_path, detail)
    assert sorted(both) == sorted(one + [f"results/configs/crepe/{t}" for t in tasks])
    assert dvcrun.must_force(ensemble, {"params": ["numerics"]}, tmp_path, detail) == ensemble.targets
    assert dvcrun.must_force(probe, {"params": ["probe.grid.lr"]}, tmp_path, detail) == probe.targets
    assert dvcrun.must_force(ensemble, {}, tmp_path, detail) == []
    # Without the job detail (another project's dvc.yaml) a change forces its whole stage.
    assert dvcrun.must_force(ensemble, {"params": ["configs.avg_xc"]}, tmp_path) == ensemble.targets
    # A code file forces the jobs that run it: ensemble/derive.py is every ensemble job's.
    (tmp_path / "src" / "hearflow" / "ensemble").mkdir(parents=True)
    (tmp_path / "src" / "hearflow" / "ensemble" / "derive.py").write_text("")
    assert (
        dvcrun.must_force(ensemble, {"code": ["src/hearflow/ensemble/derive.py"]}, tmp_path, detail) == ensemble.targets
    )
    assert dvcrun.must_force(probe, {"code": ["src/hearflow/ensemble/derive.py"]}, tmp_path, detail) == []
