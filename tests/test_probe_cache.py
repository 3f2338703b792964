"""Wide probe jobs (rule probe_wide, hearflow.probe.job.run_probes): one job probes a
configuration on every task; each task's scores are kept by key, so a rerun or a restarted
job computes only the tasks it has not seen, and copies the rest byte for byte.
PYTHONPATH=src .venv/bin/python -m pytest tests/test_probe_cache.py -q
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from hearflow.probe.job import probe_key, run_probe, run_probes
from tests.test_probe import TINY_GRID, event_task, scene_task

pytestmark = pytest.mark.usefixtures("one_torch_thread")

ROOT = Path(__file__).resolve().parents[1]
ARGS = {"engine": "native", "grid": TINY_GRID, "max_grid_points": 1, "seed": 42, "device": "cpu", "bootstrap": 5}


def _tasks(root: Path, n: int = 3, rows: int = 60) -> list[Path]:
    return [
        scene_task(
            root / f"task{i}",
            prediction_type="multiclass",
            evaluation=["top1_acc"],
            sizes={"train": rows, "valid": rows // 3, "test": rows // 3},
            seed=i,
        )
        for i in range(n)
    ]


def _pairs(dirs: list[Path], out: Path) -> list[tuple[Path, Path]]:
    return [(d, out / d.name / "scores.json") for d in dirs]


def _bytes(pairs) -> list[bytes]:
    return [o.read_bytes() for _, o in pairs]


def test_a_wide_job_computes_each_task_once_and_copies_what_it_has_seen(tmp_path):
    dirs = _tasks(tmp_path / "emb")
    cache = tmp_path / "cache"
    # What narrow jobs write, one per task: the oracle of the wide job's bytes.
    narrow = _pairs(dirs, tmp_path / "narrow")
    for d, out in narrow:
        run_probe(d, out, **ARGS)
    wide = _pairs(dirs, tmp_path / "wide")
    assert run_probes(wide, cache=cache, **ARGS) == {d.name: "computed" for d in dirs}
    assert _bytes(wide) == _bytes(narrow)
    assert len(list(cache.glob("*.json"))) == 3

    for _, out in wide:  # Snakemake deletes a job's outputs before it reruns it
        out.unlink()
    assert run_probes(wide, cache=cache, **ARGS) == {d.name: "cached" for d in dirs}
    assert _bytes(wide) == _bytes(narrow)

    # One task's embeddings change (by content; the dates do not matter): that task alone.
    emb = dirs[1] / "test.embeddings.npy"  # heareval's raw float32 memmap (hearflow.core.hear)
    x = np.fromfile(emb, dtype=np.float32)
    (x * 2.0).tofile(emb)
    os.utime(dirs[0] / "test.embeddings.npy")
    assert run_probes(wide, cache=cache, **ARGS) == {"task0": "cached", "task1": "computed", "task2": "cached"}
    x.tofile(emb)  # and back: the first result is still there
    assert run_probes(wide, cache=cache, **ARGS)["task1"] == "cached"
    assert _bytes(wide) == _bytes(narrow)

    # A setting that changes results changes every key; one that cannot (workers) none.
    assert set(run_probes(wide, cache=cache, **{**ARGS, "seed": 43}).values()) == {"computed"}
    assert set(run_probes(wide, cache=cache, **{**ARGS, "workers": 2}).values()) == {"cached"}


def test_the_key_follows_inputs_settings_code_and_libraries(tmp_path):
    [d] = _tasks(tmp_path, n=1, rows=12)
    code = {"hearflow": "a", "libraries": {"torch": "2.9.1"}, "python": "3.11.7"}
    key = probe_key(d, ARGS, code)
    assert probe_key(d, ARGS, code) == key
    assert probe_key(d, {**ARGS, "log": "x.log", "workers": 4}, code) == key
    assert probe_key(d, {**ARGS, "bootstrap": 6}, code) != key
    assert probe_key(d, ARGS, {**code, "hearflow": "b"}) != key
    assert probe_key(d, ARGS, {**code, "libraries": {"torch": "2.9.0"}}) != key
    assert probe_key(d, {**ARGS, "device": None}, code) == key  # None resolves to the CPU here
    (d / "task_metadata.json").write_text((d / "task_metadata.json").read_text() + " ")
    assert probe_key(d, ARGS, code) != key


@pytest.mark.parametrize("engine", ["native", "linear"])
def test_the_key_hashes_every_hearflow_module_a_probe_loads(tmp_path, engine):
    """The key hashes the probe scripts and the hearflow modules they import (PROBE_SCRIPTS,
    through hearflow.core.codedeps.code_files): a probe that loaded another hearflow module would
    run code the key does not cover. Probes of a scene and an event task, in a fresh
    interpreter that starts as a probe job does."""
    from hearflow.core.codedeps import ROOT as CODE_ROOT
    from hearflow.core.codedeps import code_files

    hashed = {
        p.removeprefix("src/").removesuffix(".py").removesuffix("/__init__").replace("/", ".")
        for p in code_files(["scripts/probe_wide.py"], root=CODE_ROOT)
        if p.startswith("src/")
    }
    scene = _tasks(tmp_path, n=1, rows=12)[0]
    event = event_task(tmp_path / "events")
    script = textwrap.dedent(
        f"""
        import json, sys
        from pathlib import Path
        import hearflow.core.smk
        from hearflow.probe.job import run_probe
        args = dict(engine={engine!r}, grid={TINY_GRID!r}, max_grid_points=1, seed=42, device="cpu",
                    bootstrap=3, linear={{"epochs": 2}})
        for d in ({str(scene)!r}, {str(event)!r}):
            run_probe(Path(d), Path(d) / "scores.json", **args)
        print(json.dumps(sorted(n for n in sys.modules if n == "hearflow" or n.startswith("hearflow."))))
        """
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    res = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    loaded = set(json.loads(res.stdout.strip().splitlines()[-1])) - {"hearflow"}  # a namespace package: no code
    assert "hearflow.probe.native" in loaded or "hearflow.probe.linear" in loaded
    assert loaded <= hashed, loaded - hashed


def test_a_killed_wide_job_resumes_without_redoing_finished_tasks(tmp_path):
    """SIGKILL to a wide job once its first task is in the cache; the restarted job copies
    that task, computes the rest, and writes what an uninterrupted job writes."""
    dirs = _tasks(tmp_path / "emb", n=3, rows=600)
    cache = tmp_path / "cache"
    killed = _pairs(dirs, tmp_path / "killed")
    args = {**ARGS, "grid": {**TINY_GRID, "max_epochs": [200], "patience": [200]}}
    script = textwrap.dedent(
        f"""
        import torch
        from pathlib import Path
        from hearflow.probe.job import run_probes
        torch.set_num_threads(1)
        run_probes([(Path(a), Path(b)) for a, b in {[(str(a), str(b)) for a, b in killed]!r}],
                   cache=Path({str(cache)!r}), **{args!r})
        """
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    job = subprocess.Popen([sys.executable, "-c", script], env=env, start_new_session=True)
    deadline = time.monotonic() + 240
    while not list(cache.glob("*.json")) and job.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(job.pid, signal.SIGKILL)
    job.wait()
    entries = list(cache.glob("*.json"))
    assert job.returncode == -signal.SIGKILL, "the job finished before it could be killed: give it more work"
    assert len(entries) == 1 and not list(cache.glob(".*"))  # no half-written entry either
    assert not killed[2][1].exists()

    for _, out in killed:
        out.unlink(missing_ok=True)
    assert run_probes(killed, cache=cache, **args) == {"task0": "cached", "task1": "computed", "task2": "computed"}
    whole = _pairs(dirs, tmp_path / "whole")
    assert run_probes(whole, cache=tmp_path / "fresh", **args) == {d.name: "computed" for d in dirs}
    assert _bytes(killed) == _bytes(whole)


def _members(root: Path, n: int = 2) -> list[Path]:
    """Member dirs of one model (results/members/<model>/<task>): two per-layer views each."""
    import shutil

    members = []
    for i, task in enumerate(_tasks(root / "emb", n=n, rows=90)):
        member = root / "members" / "m" / f"task{i}"
        for layer in ("00", "01"):
            shutil.copytree(task, member / "layers" / layer)
        (member / "provenance.json").write_text(json.dumps({"model": "m", "stand_in": True}))
        members.append(member)
    return members


def test_a_wide_layer_probe_job_stopped_in_its_second_task_computes_only_that_task_again(tmp_path, monkeypatch):
    """run_layer_probes (rule probe_layers_wide): the job dies in its second task; the
    restarted job copies the first task's scores from the cache and computes the second; both
    are the bytes of narrow jobs (run_layer_probe per task). Its keys are not those of a probe
    of a config on the same dir."""
    from hearflow.probe import job

    members = _members(tmp_path)
    layer_args = {"engine": "linear", "seed": 42, "linear": {"epochs": 3}, "device": "cpu"}
    narrow = [(m, tmp_path / "narrow" / m.name / "scores.json") for m in members]
    for m, out in narrow:
        out.parent.mkdir(parents=True)
        job.run_layer_probe(m, out, **layer_args)

    wide, cache = _pairs(members, tmp_path / "wide"), tmp_path / "cache"
    real = job.run_layer_probe

    def dies_in_task1(member_dir, out, **kw):
        if member_dir.name == "task1":
            raise RuntimeError("killed")
        return real(member_dir, out, **kw)

    monkeypatch.setattr(job, "run_layer_probe", dies_in_task1)
    with pytest.raises(RuntimeError, match="killed"):
        job.run_layer_probes(wide, cache=cache, **layer_args)
    assert len(list(cache.glob("*.json"))) == 1
    for _, out in wide:
        out.unlink(missing_ok=True)  # what Snakemake does with a failed job's outputs
    monkeypatch.setattr(job, "run_layer_probe", real)
    assert job.run_layer_probes(wide, cache=cache, **layer_args) == {"task0": "cached", "task1": "computed"}
    assert _bytes(wide) == _bytes(narrow)
    keys = {p.stem for p in cache.glob("*.json")}
    assert probe_key(members[0], layer_args) not in keys
