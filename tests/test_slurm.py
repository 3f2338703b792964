"""profiles/slurm on a real one-node Slurm cluster (.ci/slurm_local.sh), and the per-job
requests that the profile turns into sbatch flags.

The end-to-end test needs root and munge + slurm-wlm (the script apt-installs them when
missing). Without the Slurm binaries it is skipped, unless HEARFLOW_REQUIRE_SLURM=1 (CI sets
it), which makes a missing cluster a failure."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from hearflow.core.smk import RECORD_PREFIX, read_records
from hearflow.workflow import resources as res
from hearflow.workflow.config import ParamsError, validate_params
from hearflow.workflow.rules import job_rules
from tests.conftest import ROOT
from tests.test_workflow import SNAKEMAKE, _copy_repo, _snakemake

SLURM_LOCAL = ROOT / ".ci" / "slurm_local.sh"
PROFILES = ["--profile", "slurm", "--profile", "profiles/ci-slurm"]  # the README form
REQUIRED = os.environ.get("HEARFLOW_REQUIRE_SLURM") == "1"
SLURM_BINARIES = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "scancel", "scontrol")


def _params() -> dict:
    return yaml.safe_load((ROOT / "params.yaml").read_text())


# --- requests: sizes, runtimes from audio, growth with the attempt ---------------------------


def test_audio_seconds_of_a_task_dir_and_an_archive(tmp_path):
    import numpy as np

    from hearflow.core.audio import write_clip

    for split, n in (("train", 3), ("test", 2)):
        d = tmp_path / "task" / "16000" / split
        d.mkdir(parents=True)
        for i in range(n):
            write_clip(d / f"{i}.wav", np.zeros(16000 * 2, dtype=np.float32), 16000)  # 2 s each
    (tmp_path / "task" / "16000" / "train.json").write_text("{}")  # not audio
    assert res.audio_seconds(tmp_path / "task") == pytest.approx(10.0)
    archive = tmp_path / "hear2021-x-48000.tar.gz"
    archive.write_bytes(b"\0" * (2 * 48000 * 30))
    assert res.audio_seconds(archive) == pytest.approx(30.0)


def test_requests_grow_with_the_attempt_and_follow_the_audio():
    params = _params()["resources"]
    spec = res.request(params["embed"], "hubert_xlarge")
    assert spec["gpu"] == 1 and spec["threads"] == 8 and spec["mem_mb"] == 48000  # over `default`
    assert res.mem_mb(spec, 1) == 48000 and res.mem_mb(spec, 3) == 3 * 48000
    ten_hours = 10 * 3600
    assert res.runtime_minutes(spec, ten_hours, 1, 10) == 10 * spec["minutes_per_audio_hour"]
    assert res.runtime_minutes(spec, ten_hours, 2, 10) == 2 * 10 * spec["minutes_per_audio_hour"]
    assert res.runtime_minutes(spec, 5.0, 1, 10) == 10  # floor: min_runtime
    probe = res.request(params["jobs"], "probe")
    assert "gpu" not in probe and res.runtime_minutes(probe, None, 2, 10) == 2 * probe["runtime"]
    assert res.request(params["embed"], "logmel")["gpu"] == 0


@pytest.mark.parametrize(
    "section, key, message",
    [
        ("embed", "hubert_xxl", "resources.embed.hubert_xxl: unknown model 'hubert_xxl'"),
        ("jobs", "embedd", "resources.jobs.embedd: unknown rule 'embedd'"),
    ],
)
def test_resource_keys_are_validated(section, key, message):
    params = _params()
    params["resources"][section][key] = {"mem_mb": 1000}
    with pytest.raises(ParamsError, match=message):
        validate_params(params)


def test_job_rules_are_the_rules_that_run_scripts():
    """The rules `resources.jobs` sizes (from the rule registry) are every rule with a script but
    embed and embed_wide (sized per model), found here by a plain text split of the rule files."""
    text = "".join(p.read_text() for p in (ROOT / "rules").glob("*.smk"))
    script_rules = set()
    for block in text.split("rule ")[1:]:
        name = block.split(":", 1)[0].strip()
        if "script:" in block.split("\nrule ")[0]:
            script_rules.add(name)
    assert script_rules - {"embed", "embed_wide"} == set(job_rules())


def test_every_job_records_its_slurm_job_id_in_its_log(tmp_path, monkeypatch):
    from types import SimpleNamespace

    from hearflow.core.smk import run

    log = tmp_path / "job.log"
    job = SimpleNamespace(
        rule="probe",
        wildcards={"cfg": "crepe", "task": "t"},
        threads=1,
        log=[str(log)],
        resources={"mem_mb": 16000, "runtime": 480, "_cores": 1, "_nodes": 1, "tmpdir": "/tmp"},
    )
    for job_id in ("4711", "4712"):  # two attempts, two Slurm jobs
        monkeypatch.setenv("SLURM_JOB_ID", job_id)
        run(job, lambda smk: print("working", file=sys.stderr))
    monkeypatch.delenv("SLURM_JOB_ID")
    run(job, lambda smk: None)
    records = read_records(log)
    assert [r["slurm_job_id"] for r in records] == ["4711", "4712", None]
    assert records[0]["rule"] == "probe" and records[0]["wildcards"] == {"cfg": "crepe", "task": "t"}
    assert records[0]["resources"] == {"mem_mb": 16000, "runtime": 480, "tmpdir": "/tmp"}
    assert "working" in log.read_text()


def _dry_run_resources(output: str) -> dict[str, list[dict]]:
    """{rule: [resources of each planned job]} from a dry run's job listing."""
    out: dict[str, list[dict]] = {}
    rule = None
    for line in output.splitlines():
        s = line.strip()
        if s.startswith("rule ") and s.endswith(":"):
            rule = s[5:-1]
        elif s.startswith("localrule "):
            rule = None
        elif s.startswith("resources:") and rule:
            items = dict(kv.split("=", 1) for kv in s[len("resources:") :].strip().split(", "))
            out.setdefault(rule, []).append(items)
    return out


def test_hear2021_plan_asks_gpus_for_embeddings_only(tmp_path):
    repo = _copy_repo(tmp_path / "repo")
    planned = _dry_run_resources(_snakemake(repo, "-n", "--config", "suite=hear2021").stdout)
    spec = _params()["resources"]
    assert len(planned["embed"]) == 6 * 20
    gpus = sorted({r["gpu"] for r in planned["embed"]})
    assert gpus == ["0", "1"]  # logmel is the one CPU-only model
    mems = {int(r["mem_mb"]) for r in planned["embed"]}
    assert mems == {
        res.request(spec["embed"], m)["mem_mb"]
        for m in ("hubert_xlarge", "hubert_large", "crepe_full", "logmel", "passt")
    }
    assert {"download", "extract", "resample", "ensemble", "probe", "metrics", "table"} <= set(planned)
    for rule, jobs in planned.items():
        if rule in job_rules():
            assert all("gpu" not in r for r in jobs), rule  # CPU-only rules ask for no GPU
            assert all(r["mem_mb"] == str(res.request(spec["jobs"], rule)["mem_mb"]) for r in jobs), rule
    # runtimes that follow the audio are known once the audio exists: "<TBD>" while planning
    assert {r["runtime"] for r in planned["embed"]} == {"<TBD>"}
    assert {r["runtime"] for r in planned["probe"]} == {str(res.request(spec["jobs"], "probe")["runtime"])}


# --- the cluster -------------------------------------------------------------------------------


def _missing_slurm() -> list[str]:
    return [b for b in SLURM_BINARIES if shutil.which(b) is None]


@pytest.fixture(scope="module")
def slurm_cluster():
    """A freshly (re)started one-node cluster; stopped afterwards unless it ran before."""
    missing = _missing_slurm()
    if missing and not REQUIRED:
        pytest.skip(
            f"Slurm is not installed (missing {', '.join(missing)}); .ci/run installs munge and "
            "slurm-wlm and sets HEARFLOW_REQUIRE_SLURM=1, which turns this skip into a failure"
        )
    if os.geteuid() != 0:
        if REQUIRED:
            pytest.fail("the local Slurm cluster needs root")
        pytest.skip("the local Slurm cluster (.ci/slurm_local.sh) needs root")
    try:
        import snakemake_executor_plugin_slurm  # noqa: F401
    except ImportError:
        if REQUIRED:
            pytest.fail(
                "snakemake-executor-plugin-slurm is not installed (a pyproject dependency: rerun ./bootstrap.sh)"
            )
        pytest.skip("snakemake-executor-plugin-slurm is not installed; rerun ./bootstrap.sh")
    already = subprocess.run([str(SLURM_LOCAL), "status"], capture_output=True).returncode == 0
    # Restart even a running cluster: it gets this checkout's slurm.conf (e.g. MinJobAge).
    subprocess.run([str(SLURM_LOCAL), "stop"], capture_output=True, check=True)
    started = subprocess.run([str(SLURM_LOCAL), "start"], capture_output=True, text=True)
    assert started.returncode == 0, started.stdout + started.stderr
    yield
    if not already:
        subprocess.run([str(SLURM_LOCAL), "stop"], check=True)


def _squeue(*args: str) -> list[list[str]]:
    out = subprocess.run(["squeue", "--noheader", *args], capture_output=True, text=True, check=True).stdout
    return [line.split("|") for line in out.splitlines() if line.strip()]


def _scontrol(job_id: str) -> dict[str, str]:
    out = subprocess.run(["scontrol", "show", "job", job_id], capture_output=True, text=True, check=True).stdout
    fields = {}
    for token in out.split():
        if "=" in token:
            k, v = token.split("=", 1)
            fields.setdefault(k, v)
    return fields


def _job_logs(repo: Path) -> dict[str, Path]:
    """Every job's log (logs/ minus the executor's own logs/slurm/), by relative path."""
    return {
        str(p.relative_to(repo / "logs")): p
        for p in (repo / "logs").rglob("*.log")
        if p.relative_to(repo / "logs").parts[0] != "slurm"
    }


@pytest.fixture(scope="module")
def small_on_slurm(tmp_path_factory, slurm_cluster, small_demo_built):
    """The small DVC demo (tests/test_dvc.py SMALL: two configs on a scene and an event task,
    every phase) built from scratch by `snakemake --profile slurm --profile profiles/ci-slurm`,
    one embedding job cancelled with scancel while it runs; and the same demo built locally
    (conftest's `small_demo_built`, by `dvc repro`), to compare. One Slurm build serves both
    Slurm tests (issue 30: the reduced demo's own Slurm build cost CI 6 more minutes and tested
    nothing more); the local build is the one the DVC and fault tests share."""
    from tests.test_dvc import _make_repo

    root = tmp_path_factory.mktemp("slurm")
    local, _ = small_demo_built
    repo = _make_repo(root / "repo")
    env = dict(
        os.environ,
        PYTHONPATH=str(repo / "src"),
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    )
    env.pop("SNAKEMAKE_PROFILE", None)
    log_path = root / "snakemake.log"
    log = log_path.open("w")
    proc = subprocess.Popen([*SNAKEMAKE, *PROFILES], cwd=repo, env=env, stdout=log, stderr=subprocess.STDOUT, text=True)

    # Kill one embedding job with scancel while it runs; `retries` must resubmit it.
    cancelled = None
    deadline = time.time() + 1800
    while proc.poll() is None and time.time() < deadline:
        if cancelled is None:
            for job_id, state, comment in _squeue("--states=RUNNING", "--format=%i|%T|%k"):
                if comment.startswith("rule_embed_wildcards_"):
                    subprocess.run(["scancel", job_id], check=True)
                    cancelled = (job_id, comment[len("rule_embed_wildcards_") :])
                    break
        time.sleep(0.5)
    if proc.poll() is None:
        proc.kill()
    log.close()
    return {"repo": repo, "local": local, "rc": proc.wait(), "output": log_path.read_text(), "cancelled": cancelled}


@pytest.mark.e2e
def test_demo_on_slurm_matches_the_local_run(small_on_slurm):
    run = small_on_slurm
    repo, local, output = run["repo"], run["local"], run["output"]
    assert run["rc"] == 0, output[-6000:]
    assert run["cancelled"] is not None, "no embed job was seen running; nothing was cancelled"

    # Same numbers as the local run, byte for byte.
    assert (repo / "reports" / "metrics.json").read_bytes() == (local / "reports" / "metrics.json").read_bytes()
    for table in (local / "reports" / "tables").glob("*.md"):
        assert (repo / "reports" / "tables" / table.name).read_text() == table.read_text()

    # Every job ran under Slurm: each log's last record names a Slurm job that Slurm knows.
    local_logs, slurm_logs = _job_logs(local), _job_logs(repo)
    assert set(slurm_logs) == set(local_logs)
    phases = {name.split("/")[0] for name in local_logs}
    assert {"demo_archive", "download", "extract", "resample", "standin", "embed", "ensemble", "probe"} <= phases
    assert {"probe_layers", "report"} <= phases
    final = {}
    for name, path in slurm_logs.items():
        records = read_records(path)
        assert records, f"{name}: no {RECORD_PREFIX.strip()} record"
        assert all(r["slurm_job_id"] and r["slurm_job_id"].isdigit() for r in records), (name, records)
        final[name] = records[-1]
        assert read_records(local_logs[name])[-1]["slurm_job_id"] is None
    job_ids = {r["slurm_job_id"] for r in final.values()}
    submitted = set(re.findall(r"submitted with SLURM jobid (\d+)", output))
    assert job_ids <= submitted, job_ids - submitted
    assert all(_scontrol(j)["JobState"] == "COMPLETED" for j in job_ids)  # MinJobAge keeps them known
    assert all(r["resources"].get("gpu", 0) == 0 for r in final.values())  # ci-slurm: gpu 0

    # The cancelled job was resubmitted as a new Slurm job, with twice the memory and time.
    job_id, wildcards = run["cancelled"]  # the sbatch comment joins the wildcard values with "_"
    retried = [
        (n, r) for n, r in final.items() if n.startswith("embed/") and "_".join(r["wildcards"].values()) == wildcards
    ]
    assert len(retried) == 1, (wildcards, sorted(final))
    name, record = retried[0]
    assert record["slurm_job_id"] != job_id
    spec = res.request(_params()["resources"]["embed"], record["wildcards"]["model"])
    assert record["resources"]["mem_mb"] == 2 * spec["mem_mb"]  # attempt 2
    assert _scontrol(job_id)["JobState"] == "CANCELLED"
    again = _scontrol(record["slurm_job_id"])
    assert again["JobState"] == "COMPLETED"
    assert again["MinMemoryNode"] == f"{2 * spec['mem_mb']}M"
    assert again["TimeLimit"] == f"00:{2 * _params()['resources']['min_runtime']:02d}:00"
    assert "gres/gpu" not in again.get("TRES", "")
    from tests.test_faults import record

    record(
        [
            {
                "fault": "Slurm job cancelled (scancel), resubmitted by `retries`",
                "where": "embed",
                "in_flight": 1,
                "kept": len(final) - 1,
                "identical": True,
            }
        ]
    )


@pytest.mark.e2e
def test_snakemake_on_slurm_then_dvc_repro_on_slurm(small_on_slurm):
    """The small DVC demo that `snakemake --profile slurm` built from scratch on Slurm: the
    `SNAKEMAKE_PROFILE='[slurm, profiles/ci-slurm]' dvc repro` that follows records every
    stage and runs no job; after a probe change that `dvc repro` runs the probe and report
    jobs, on Slurm, in one Snakemake call."""
    from tests.test_dvc import PROBE_KEY, _dvc, _ran

    repo = small_on_slurm["repo"]
    assert small_on_slurm["rc"] == 0, small_on_slurm["output"][-6000:]
    stages = yaml.safe_load((repo / "dvc.yaml").read_text())["stages"]

    def last_jobs() -> dict[str, str]:  # each log's last Slurm job (Snakemake rewrites a job's log)
        return {n: read_records(p)[-1]["slurm_job_id"] for n, p in _job_logs(repo).items()}

    built = last_jobs()
    assert len(built) > 10 and all(job and job.isdigit() for job in built.values()), built

    after = _dvc(repo, "repro", SNAKEMAKE_PROFILE="[slurm, profiles/ci-slurm]")  # records, runs no job
    out = after.stdout + after.stderr
    assert sorted(_ran(after)) == sorted(stages)
    assert out.count("hearflow.workflow.dvcrun: one Snakemake run for") == 1 and "Nothing to be done" in out, out[
        -3000:
    ]
    assert last_jobs() == built
    assert "Data and pipelines are up to date." in _dvc(repo, "status").stdout

    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["suites"]["demo"]["overrides"]["probe"]["grid"]["hidden_dim"] = [16]
    assert PROBE_KEY == "suites.demo.overrides.probe.grid.hidden_dim"
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    again = _dvc(repo, "repro", SNAKEMAKE_PROFILE="[slurm, profiles/ci-slurm]")
    assert sorted(_ran(again)) == ["probe", "report"]
    rebuilt = last_jobs()
    changed = {n.split("/")[0] for n in rebuilt if rebuilt[n] != built[n]}
    assert changed == {"probe", "report"}, changed
    assert all(job and job.isdigit() for job in rebuilt.values())
    assert "Data and pipelines are up to date." in _dvc(repo, "status").stdout
