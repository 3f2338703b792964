"""hearflow.workflow.dvcrun, the command of every dvc.yaml stage, on a toy pipeline with real DVC and
Snakemake: one Snakemake call per `dvc repro`, what it forces, and what it leaves alone."""

from __future__ import annotations

import hashlib
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
from hearflow.workflow.outcheck import cache_file
from tests.conftest import ROOT
from tests.test_faults import record

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


# --- a damaged DVC cache (issue 35; hearflow.workflow.outcheck) ------------------------------


def _flip(path: Path, keep_times: bool) -> None:
    """Flip one byte of `path`; with keep_times its size and mtime stay (bit rot, a copy tool
    that restores times), so DVC's state database still trusts its old hash."""
    st = path.stat()
    os.chmod(path, 0o644)
    data = bytearray(path.read_bytes())
    data[0] ^= 0xFF
    path.write_bytes(bytes(data))
    os.chmod(path, st.st_mode)
    if keep_times:
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def test_outcheck_hashes_as_dvc_does(toy):
    """hearflow.workflow.outcheck.dvc_md5 of a file and of a folder output equals the md5 DVC
    itself wrote into dvc.lock."""
    from hearflow.workflow.outcheck import dvc_md5

    _repro(toy)
    lock = yaml.safe_load((toy / "dvc.lock").read_text())["stages"]
    for stage, out in (("a", "out/a.txt"), ("b", "out/b")):
        (entry,) = lock[stage]["outs"]
        assert entry["path"] == out and dvc_md5(toy / out) == entry["md5"], out
    assert lock["b"]["outs"][0]["md5"].endswith(".dir")


@pytest.mark.parametrize("keep_times", [True, False], ids=["size-and-mtime-kept", "mtime-changed"])
def test_a_cache_file_damaged_silently_is_never_handed_to_a_job(toy, keep_times):
    """A damaged cache file (bit rot with its size and mtime kept, or any damage that no `dvc
    status` saw before the checkout): `dvc checkout` trusts it, writes the damaged copy into the
    workspace and records the copy's hash as the lock's, so `dvc status` sees nothing wrong.
    The next `dvc repro` that runs any stage (here a params change of stage c) goes through
    hearflow.workflow.dvcrun, which finds an output that differs from dvc.lock and that
    Snakemake did not write, and builds it again in the same Snakemake call, before any job
    could read it; its damaged cache file is removed, and DVC stores the rebuilt one."""
    _repro(toy)
    good = (toy / "out" / "b" / "b.txt").read_bytes()
    md5 = hashlib.md5(good).hexdigest()
    _flip(cache_file(toy, md5), keep_times=keep_times)
    _run(toy, "rm", "-rf", "out/b")
    _run(toy, str(BIN / "dvc"), "checkout")
    assert (toy / "out" / "b" / "b.txt").read_bytes() != good  # DVC handed the damaged copy over
    if keep_times:  # DVC trusts the copy
        assert "up to date" in _run(toy, str(BIN / "dvc"), "status")
    _set(toy, y=2)
    ran, jobs, out = _repro(toy)
    assert "c" in ran and sorted(set(jobs)) == ["b", "c"], out[-3000:]
    assert "1 output(s) differ from dvc.lock and were not written by Snakemake" in out and "out/b" in out
    assert (toy / "out" / "b" / "b.txt").read_bytes() == good
    if "up to date" not in _run(toy, str(BIN / "dvc"), "status"):  # b's cache file was removed: DVC stores it
        ran, jobs, out = _repro(toy)
        assert jobs == [], out[-3000:]
    assert "up to date" in _run(toy, str(BIN / "dvc"), "status")
    assert cache_file(toy, md5).read_bytes() == good
    _run(toy, "rm", "-rf", "out/b")
    _run(toy, str(BIN / "dvc"), "checkout")
    assert (toy / "out" / "b" / "b.txt").read_bytes() == good
    record(
        [
            {
                "fault": "DVC cache file damaged, "
                + ("size and mtime kept" if keep_times else "mtime changed")
                + ", checked out",
                "where": "dvc checkout",
                "in_flight": 0,
                "kept": 1,  # a: of the toy's three outputs, b and c were built
                "identical": True,
            }
        ]
    )


def test_outcheck_lists_and_repairs_damaged_outputs(toy):
    """`python -m hearflow.workflow.outcheck` after a checkout of a damaged cache file: it names
    the output and exits 1; with --repair it deletes it, and `dvc repro` restores it."""
    _repro(toy)
    good = (toy / "out" / "a.txt").read_bytes()
    _flip(cache_file(toy, hashlib.md5(good).hexdigest()), keep_times=True)
    _run(toy, "rm", "out/a.txt")
    _run(toy, str(BIN / "dvc"), "checkout")
    cmd = [sys.executable, "-m", "hearflow.workflow.outcheck"]
    res = subprocess.run(cmd, cwd=toy, env=_env(), capture_output=True, text=True)
    assert res.returncode == 1 and "damaged: out/a.txt differs from dvc.lock" in res.stdout, res.stdout + res.stderr
    assert "out/b" not in res.stdout and "out/c.txt" not in res.stdout
    assert "removed; run `dvc pull` or `dvc repro`" in _run(toy, *cmd, "--repair")
    assert not (toy / "out" / "a.txt").exists()
    _repro(toy)
    assert (toy / "out" / "a.txt").read_bytes() == good
    assert "every output present matches dvc.lock (3 outputs)" in _run(toy, *cmd)
