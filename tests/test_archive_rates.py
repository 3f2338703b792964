"""suites.<suite>.archive_rates: task folders at 16/32 kHz from their own archives (no resampling).

Upstream publishes hear2021-<task>-<rate>.tar.gz at 16000/22050/32000/44100 Hz besides the
public 48 kHz ones. A rate listed in the suite's `archive_rates` is downloaded, verified and
extracted from its own archive; the resample job for it disappears. Tested with synthetic
archives (hearflow.data.simtask) served by an HTTP server on 127.0.0.1.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml

from hearflow.core import hear
from hearflow.data import archives as data
from hearflow.data import simtask
from hearflow.data.resample import resample_task
from hearflow.workflow import dvcgen, resources
from hearflow.workflow.config import load_params
from tests.conftest import ROOT, copy_checkout, serve_folder

FIXTURES = ROOT / "tests" / "fixtures" / "hear2021"
TASKS = ["esc50-v2.0.0-full", "speech_commands-v0.0.2-5h"]  # k-fold and trainvaltest (no nfolds)
ALL_RATES = [48000, 16000, 32000]


def _meta(task: str) -> bytes:
    return (FIXTURES / task / "task_metadata.json").read_bytes()


def _archives(folder: Path, rates=ALL_RATES, **kwargs) -> Path:
    for task in TASKS:
        for rate in rates:
            simtask.build_archive(_meta(task), task, folder / data.archive_name(task, rate), sample_rate=rate, **kwargs)
    return folder


# ------------------------------------------------------------------------------- library


def test_names_urls_and_extraction_at_another_rate(tmp_path):
    task = TASKS[0]
    assert data.archive_name(task, 16000) == f"hear2021-{task}-16000.tar.gz"
    assert (
        data.archive_url("https://example.org/x/", task, 32000) == f"https://example.org/x/hear2021-{task}-32000.tar.gz"
    )
    assert data.archive_url("https://example.org/x", task) == f"https://example.org/x/hear2021-{task}-48000.tar.gz"
    archive = simtask.build_archive(_meta(task), task, tmp_path / data.archive_name(task, 16000), sample_rate=16000)
    with tarfile.open(archive) as tar:
        assert {Path(m.name).parts[2] for m in tar.getmembers() if len(Path(m.name).parts) > 3} == {"16000"}
    out = data.extract_task(archive, tmp_path / "tasks" / "16000" / task, task, rate=16000)
    assert hear.Task.load(out).sample_rates() == [16000]
    with pytest.raises(hear.TaskFormatError, match="no audio folder .*48000"):  # a 16 kHz archive is no 48 kHz one
        data.extract_task(archive, tmp_path / "wrong" / task, task)
    assert not (tmp_path / "wrong" / task).exists()
    # size-based runtime estimate: a 16 kHz archive holds three times the audio per byte of a 48 kHz one
    assert resources.audio_seconds(archive) == pytest.approx(archive.stat().st_size / 32000)


def test_labels_are_the_same_at_every_rate(tmp_path):
    task = "maestro-v3.0.0-5h"  # event labels in ms
    files = {r: simtask.task_files(_meta(task), task, durations=2.0, sample_rate=r) for r in ALL_RATES}
    for rate in (16000, 32000):
        assert {k: v for k, v in files[rate].items() if k.endswith((".json", ".csv"))} == {
            k: v for k, v in files[48000].items() if k.endswith((".json", ".csv"))
        }
        wavs = sorted(k.split("/", 1)[1] for k in files[rate] if k.endswith(".wav"))
        assert wavs == sorted(k.split("/", 1)[1] for k in files[48000] if k.endswith(".wav"))


def test_capped_extraction_keeps_what_resampling_keeps(tmp_path):
    task = TASKS[1]
    kwargs = {"clips": 12, "durations": 0.2}
    a48 = simtask.build_archive(_meta(task), task, tmp_path / data.archive_name(task), **kwargs)
    a16 = simtask.build_archive(
        _meta(task), task, tmp_path / data.archive_name(task, 16000), sample_rate=16000, **kwargs
    )
    full = data.extract_task(a48, tmp_path / "48000" / task, task)
    resampled = resample_task(
        full, tmp_path / "r16000" / task, sr_in=48000, sr_out=16000, max_clips_per_split=5, seed=7
    )
    direct = data.extract_task(a16, tmp_path / "16000" / task, task, rate=16000, max_clips_per_split=5, seed=7)
    for split in ("train", "valid", "test"):
        assert (direct / f"{split}.json").read_bytes() == (resampled / f"{split}.json").read_bytes()
        names = sorted(p.name for p in (direct / "16000" / split).glob("*.wav"))
        assert names == sorted(p.name for p in (resampled / "16000" / split).glob("*.wav")) and len(names) == 5
    hear.check_task_layout(hear.Task.load(direct), 16000)


# ------------------------------------------------------------------------------- the rules


def _snakemake(repo: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(repo / "src"))
    res = subprocess.run([sys.executable, "-m", "snakemake", *args], cwd=repo, env=env, capture_output=True, text=True)
    if check and res.returncode != 0:
        pytest.fail(f"snakemake {' '.join(args)} failed:\n{res.stdout[-5000:]}\n{res.stderr[-5000:]}")
    return res


def _override(mirror: str, lock: Path, rates: list[int], configs: list[str]) -> dict:
    return {
        "suite": "hear2021",
        "suites": {
            "hear2021": {
                "mirror": mirror,
                "checksums": str(lock),
                "tasks": TASKS,
                "configs": configs,
                "archive_rates": rates,
                "overrides": {
                    "probe": {"max_grid_points": 1, "grid": {"hidden_dim": [16], "max_epochs": [6], "patience": [2]}}
                },
            }
        },
    }


def _jobs(repo: Path, configfile: str) -> list[tuple[str, set[str], set[str]]]:
    from tests.test_dvc import _dry_run_jobs

    return _dry_run_jobs(repo, "--configfile", configfile)


@pytest.mark.parametrize(
    "rates, expected",
    [
        # every rate a model needs has its archive: no resampling, no 48 kHz archive at all
        ([48000, 16000, 32000], {"download": {16000, 32000}, "extract": {16000, 32000}, "resample": set()}),
        # 32 kHz from its archive, 16 kHz resampled from the 48 kHz folder
        ([48000, 32000], {"download": {48000, 32000}, "extract": {48000, 32000}, "resample": {16000}}),
        ([48000], {"download": {48000}, "extract": {48000}, "resample": {16000, 32000}}),  # the default
    ],
)
def test_plan_and_dvc_stages_follow_archive_rates(tmp_path, rates, expected):
    repo = copy_checkout(tmp_path / "repo", exclude=(".dvc/",))
    override = _override("https://mirror.invalid/hear", tmp_path / "lock", rates, ["logmel", "crepe"])
    (repo / "rates.yaml").write_text(yaml.safe_dump(override))
    jobs = _jobs(repo, "rates.yaml")

    def rates_of(rule: str) -> set[int]:
        outs = [o for r, _, outputs in jobs if r == rule for o in outputs]
        assert len(outs) == len(TASKS) * len(expected[rule]), (rule, outs)
        return {int(o.rsplit("-", 1)[1].split(".")[0]) if rule == "download" else int(o.split("/")[2]) for o in outs}

    for rule in ("download", "extract", "resample"):
        assert rates_of(rule) == expected[rule], rule
    # dvc.yaml's data stages own exactly these jobs' outputs and list archive_rates (rule download reads it)
    params = load_params(repo / "params.yaml")
    params["suite"] = "hear2021"
    params["suites"]["hear2021"] = dict(params["suites"]["hear2021"], **override["suites"]["hear2021"])
    stages = dvcgen.stages(params, repo)
    stage = stages["data"]  # one data stage: every task's download, extraction and resampling
    produced = {o for r, _, outputs in jobs if r in ("download", "extract", "resample") for o in outputs}
    assert {next(iter(o)) for o in stage["outs"]} == produced
    assert all(any(task in o for o in produced) for task in TASKS)
    assert "suites.hear2021.archive_rates" in stage["params"]
    assert ("resample" in stage["cmd"].split(" -- ")[0]) == bool(expected["resample"])


def test_demo_refuses_other_archive_rates_and_schema_needs_48000(tmp_path):
    repo = copy_checkout(tmp_path / "repo", exclude=(".dvc/",))
    (repo / "demo16.yaml").write_text(yaml.safe_dump({"suites": {"demo": {"archive_rates": [48000, 16000]}}}))
    res = _snakemake(repo, "-n", "--configfile", "demo16.yaml", check=False)
    assert res.returncode != 0 and "the demo suite synthesises 48000 Hz archives only" in res.stdout + res.stderr
    (repo / "no48.yaml").write_text(yaml.safe_dump({"suites": {"hear2021": {"archive_rates": [16000]}}}))
    res = _snakemake(repo, "-n", "--configfile", "no48.yaml", check=False)
    assert res.returncode != 0 and "suites.hear2021.archive_rates" in res.stdout + res.stderr


@pytest.fixture()
def mirror(tmp_path):
    folder = _archives(tmp_path / "mirror")
    with serve_folder(folder) as (url, requested):
        yield url, folder, requested


@pytest.mark.e2e
def test_a_32khz_archive_replaces_resampling_through_the_rules(tmp_path, mirror):
    url, folder, requested = mirror
    repo = copy_checkout(tmp_path / "repo", exclude=(".dvc/",))
    lock = tmp_path / "rates.lock"
    (repo / "rates.yaml").write_text(yaml.safe_dump(_override(url, lock, ALL_RATES, ["logmel"])))
    targets = [f"results/probe/logmel/{t}/scores.json" for t in TASKS]
    res = _snakemake(repo, "--cores", "2", "--configfile", "rates.yaml", "--", *targets)
    assert "rule resample" not in res.stdout + res.stderr

    # only the 32 kHz archives were fetched (logmel runs at 32 kHz), verified and recorded
    names = sorted(data.archive_name(t, 32000) for t in TASKS)
    assert sorted(requested) == names
    assert json.loads(lock.read_text()) == {n: hashlib.sha256((folder / n).read_bytes()).hexdigest() for n in names}
    assert sorted(p.name for p in (repo / "data" / "archives").iterdir()) == names
    assert sorted(p.name for p in (repo / "data" / "tasks").iterdir()) == ["32000"]
    for task in TASKS:
        local = repo / "data" / "tasks" / "32000" / task
        with tarfile.open(folder / data.archive_name(task, 32000)) as tar:  # the archive's own audio, unchanged
            for member in tar.getmembers():
                if member.name.endswith(".wav"):
                    rel = Path(member.name).relative_to(f"tasks/{task}")
                    assert (local / rel).read_bytes() == tar.extractfile(member).read(), rel
        scores = json.loads((repo / "results" / "probe" / "logmel" / task / "scores.json").read_text())
        evaluation = json.loads(_meta(task))["evaluation"]
        assert scores["task"] == task and set(scores["metrics"]) == set(evaluation)
        assert all(math.isfinite(scores["metrics"][m]) for m in evaluation)
