"""hear2021-sim (hearflow.data.sim): the 20 real task directories' shape at small scale, and the
HTTP mirror its downloads go through (hearflow.data.mirror), killed mid-download and resumed.

Expected values come from outside the code under test: the real metadata fixtures
(tests/fixtures/hear2021, hear-preprocess v2021.1.0's own output), the catalog's sourced
facts (catalog/hear2021.yaml: clips, labels, durations, event densities), and the WAV and
label files read back from the synthesised tasks. The whole suite's run through the real
rules, checked against the planner, is tests/test_plan.py.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import signal
import subprocess
import sys
import time
import urllib.request
import wave
from pathlib import Path

import pytest
import yaml

from hearflow.core.hear import KFOLD_SPLIT_MODES
from hearflow.data import archives as data
from hearflow.data import mirror, sim
from hearflow.workflow.config import load_params, make_plan
from hearflow.workflow.keys import deep_merge
from tests.conftest import ROOT, copy_checkout

FIXTURES = ROOT / "tests" / "fixtures" / "hear2021"
CATALOG = yaml.safe_load((ROOT / "catalog" / "hear2021.yaml").read_text())["tasks"]
SIM = load_params(ROOT / "params.yaml")["suites"]["hear2021-sim"]
TASKS = sorted(CATALOG)


def fixture(task: str) -> dict:
    return json.loads((FIXTURES / task / "task_metadata.json").read_bytes())


def shape(task: str, **kw) -> sim.Shape:
    settings = {"scale": SIM["scale"], "min_clips": SIM["min_clips"], "max_seconds": SIM["max_seconds"], **kw}
    return sim.task_shape(task, CATALOG[task], **settings)


@pytest.mark.parametrize("task", TASKS)
def test_shape_follows_the_real_task(task):
    """Splits and folds of the real metadata; the catalog's vocabulary; durations capped;
    the clip count `scale` x real clips per split, at least min_clips and what the metrics need."""
    meta, facts, s = fixture(task), CATALOG[task], shape(task)
    assert list(s.splits) == meta["splits"]
    if meta["split_mode"] in KFOLD_SPLIT_MODES:
        assert len(s.splits) == meta["nfolds"]
    assert s.vocabulary_size == facts["labels"]
    real = [facts["sample_duration"]] if facts["sample_duration"] else facts["durations"]
    assert max(s.durations) == min(max(real), SIM["max_seconds"])
    assert s.clips >= SIM["min_clips"]
    assert s.clips >= round(SIM["scale"] * facts["clips"] / len(meta["splits"]))
    auc = {"aucroc", "mAP", "d_prime"} & set(meta["evaluation"])
    if auc and meta["embedding_type"] == "scene":  # every label, positive and negative, in every split
        assert s.clips >= 2 * facts["labels"] + min(facts["labels"], SIM["min_clips"])


def test_scale_grows_the_clip_count_beyond_the_floor():
    """speech_commands-full: 100503 clips over 3 splits; at scale 0.01, 335 per split."""
    assert shape("speech_commands-v0.0.2-full", scale=0.01).clips == 335
    assert shape("speech_commands-v0.0.2-full", scale=0.0001).clips == SIM["min_clips"]  # 3.35 -> the floor


def test_real_durations_without_the_cap():
    assert shape("beehive_states_fold0-v2-full", max_seconds=None).durations == (600.0,)
    fsd = shape("fsd50k-v1.0-full", max_seconds=None).durations
    assert fsd[0] == 0.3 and fsd[-1] == 30.0 and len(set(fsd)) == sim.SPREAD_POINTS


def _wav_seconds(path: Path) -> float:
    with wave.open(str(path)) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 48000)
        return w.getnframes() / w.getframerate()


@pytest.mark.parametrize(
    "task",
    ["fsd50k-v1.0-full", "maestro-v3.0.0-5h", "nsynth_pitch-v2.2.3-50h", "tfds_gtzan-1.0.0-full", "esc50-v2.0.0-full"],
)
def test_built_task_has_the_real_shape(task, tmp_path):
    """Read back: metadata byte for byte, vocabulary size, clip lengths, every label in every
    split where the metrics need it, event lengths and density."""
    s = shape(task)
    root = sim.build_archive(task, tmp_path / data.archive_name(task), shape=s, seed=3)
    dest = data.extract_task(root, tmp_path / "x" / task, task)
    meta, facts = fixture(task), CATALOG[task]
    assert (dest / "task_metadata.json").read_bytes() == (FIXTURES / task / "task_metadata.json").read_bytes()
    vocab = (dest / "labelvocabulary.csv").read_text().splitlines()[1:]
    assert len(vocab) == facts["labels"]
    labels = [row.split(",", 1)[1] for row in vocab]
    if "pitch_acc" in meta["evaluation"]:  # 88 pitches: MIDI 21..108, every key
        assert labels == [str(p) for p in range(21, 109)]
    cap = SIM["max_seconds"]
    for split in meta["splits"]:
        clips = json.loads((dest / f"{split}.json").read_text())
        assert len(clips) == s.clips
        lengths = [_wav_seconds(dest / "48000" / split / name) for name in clips]
        if facts.get("durations"):  # variable length: a spread within the real range, capped
            assert min(lengths) == pytest.approx(facts["durations"][0], abs=1e-4)
            assert max(lengths) == pytest.approx(min(cap, facts["durations"][1]), abs=1e-4)
            assert len({round(x, 3) for x in lengths}) == sim.SPREAD_POINTS
        else:
            assert lengths == pytest.approx([min(cap, facts["sample_duration"])] * len(clips), abs=1e-4)
        if meta["embedding_type"] == "event":
            events = [e for evs in clips.values() for e in evs]
            per_clip = max(1, round(facts["events_per_minute"] * min(cap, facts["sample_duration"]) / 60))
            assert all(len(evs) == per_clip for evs in clips.values())
            assert all(250 <= e["end"] - e["start"] <= 600 + 1e-6 for e in events)
            assert all(0 <= e["start"] and e["end"] <= 1000 * min(lengths) + 1e-6 for e in events)
            assert {e["label"] for e in events} == set(labels)  # every label in every split
        elif {"aucroc", "mAP", "d_prime"} & set(meta["evaluation"]):
            present = [set(v) for v in clips.values()]
            for label in labels:  # a positive and a negative of every label in every split
                assert any(label in p for p in present) and any(label not in p for p in present), (split, label)


# ------------------------------------------------------------------------------ the mirror


def test_mirror_answers_range_requests(tmp_path):
    (tmp_path / "a.tar.gz").write_bytes(bytes(range(256)) * 40)
    seen: list = []
    with mirror.serve(tmp_path, log=seen) as url:
        whole = urllib.request.urlopen(f"{url}/a.tar.gz").read()
        req = urllib.request.Request(f"{url}/a.tar.gz", headers={"Range": "bytes=1000-"})
        with urllib.request.urlopen(req) as resp:
            assert resp.status == 206 and resp.headers["Content-Range"] == "bytes 1000-10239/10240"
            rest = resp.read()
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(urllib.request.Request(f"{url}/a.tar.gz", headers={"Range": "bytes=10240-"}))
        assert err.value.code == 416
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(f"{url}/missing.tar.gz")
        assert err.value.code == 404
    assert whole == bytes(range(256)) * 40 and rest == whole[1000:]
    assert seen[:2] == [("a.tar.gz", None), ("a.tar.gz", "bytes=1000-")]


def _start_mirror(folder: Path, log: Path, throttle: float | None, port: int = 0) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "hearflow.data.mirror", str(folder), "--port", str(port), "--log", str(log)]
        + (["--throttle", str(throttle)] if throttle else []),
        stdout=subprocess.PIPE,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(ROOT / "src")),
    )
    return proc, proc.stdout.readline().strip()


@pytest.mark.e2e
def test_killed_mirror_mid_download_then_the_rerun_resumes(tmp_path):
    """The real download rule against a mirror process: the mirror is killed (SIGKILL) while
    the archive is half fetched, so the job fails and leaves its .part; a second Snakemake run,
    the mirror back on the same port, asks for the rest only (Range: bytes=<part size>-) and
    verifies the whole archive against the checksum lock and, Beehive's archives having a
    published md5, against the catalog's md5 (here a catalog copy naming the stand-in's)."""
    task = "beehive_states_fold0-v2-full"
    folder = tmp_path / "mirror"
    archive = sim.build_archive(task, folder / data.archive_name(task), shape=shape(task), seed=1)
    size = archive.stat().st_size
    log = tmp_path / "requests.tsv"
    proc, url = _start_mirror(folder, log, throttle=size / 6)  # ~6 s for the whole archive
    port = int(url.rsplit(":", 1)[1])
    repo = copy_checkout(tmp_path / "repo", exclude=(".dvc/",))
    lock = tmp_path / "sim.lock"
    catalog = yaml.safe_load((ROOT / "catalog" / "hear2021.yaml").read_text())
    assert catalog["tasks"][task]["md5"]  # published (DESIGN section 3)
    catalog["tasks"][task]["md5"] = hashlib.md5(archive.read_bytes()).hexdigest()
    (tmp_path / "catalog.yaml").write_text(yaml.safe_dump(catalog, sort_keys=False))
    override = {
        "suite": "hear2021",
        "suites": {
            "hear2021": {
                "mirror": url,
                "checksums": str(lock),
                "tasks": [task],
                "catalog": str(tmp_path / "catalog.yaml"),
            }
        },
    }
    (repo / "override.yaml").write_text(yaml.safe_dump(override))
    target = data.archive_name(task)
    cmd = [sys.executable, "-m", "snakemake", "--cores", "1", "--retries", "0", "--configfile", "override.yaml"]
    cmd += ["--", f"data/archives/{target}"]
    env = dict(os.environ, PYTHONPATH=str(repo / "src"), HEARFLOW_DOWNLOAD_RETRIES="0")
    part = repo / "data" / "archives" / f"{target}.part"
    first = subprocess.Popen(cmd, cwd=repo, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        while not (part.exists() and part.stat().st_size > size // 4):
            assert time.monotonic() < deadline and first.poll() is None, "the download never got going"
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)  # the mirror dies mid-transfer
        proc.wait()
        out = first.communicate(timeout=120)[0]
    finally:
        if proc.poll() is None:
            proc.kill()
    assert first.returncode != 0, out[-3000:]
    kept = part.stat().st_size
    assert size // 4 < kept < size, (kept, size)  # the partial download survives the failed job
    assert not (repo / "data" / "archives" / target).exists() and not lock.exists()  # nothing unverified kept

    proc, url2 = _start_mirror(folder, log, throttle=None, port=port)  # the mirror is back
    try:
        res = subprocess.run(cmd, cwd=repo, env=env, capture_output=True, text=True, timeout=300)
    finally:
        proc.kill()
        proc.wait()
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    got = (repo / "data" / "archives" / target).read_bytes()
    assert got == archive.read_bytes()
    assert json.loads(lock.read_text()) == {target: hashlib.sha256(got).hexdigest()}
    requests = [line.split("\t") for line in log.read_text().splitlines()]
    assert requests[0] == [target, ""]  # the first run: the whole file
    assert requests[-1] == [target, f"bytes={kept}-"]  # the rerun: only what was missing


# ------------------------------------------------------------------- the whole suite, run

MODELS = ["hubert_standin", "wav2vec2_standin", "crepe_tiny", "logmel", "passt_standin"]
SCENE_NEEDS_FINITE = ("top1_acc", "pitch_acc", "chroma_acc", "mAP", "aucroc", "d_prime")


def _size(path: Path) -> int:
    return path.stat().st_size if path.is_file() else sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


# The e2e runs every task, phase and model, and every kind of combination and view, not every
# config x task pair (the full product is benchmarks/sim_rehearsal.py): fusion_cat_xwc_time
# (fusion views, cat interleaved, CREPE's last layer, 5 time groups), avg_xc (avg, HuBERT's
# last layer), cat_xw (member blocks, the Large stand-in and wav2vec2's last layers), logmel,
# passt; the SSL members' per-layer views go through probe_layers.
E2E_CONFIGS = ["fusion_cat_xwc_time", "avg_xc", "cat_xw", "logmel", "passt"]


@pytest.fixture(scope="module")
def sim_run(tmp_path_factory):
    """One `snakemake --cores N --config suite=hear2021-sim` in a copy of the checkout (the
    rehearsal command of docs/suites.md; N: every core, at least 2) with the suite's configs cut to
    E2E_CONFIGS, every target of the suite; its wall time is printed. Results do not
    depend on N (reproducible numerics)."""
    repo = copy_checkout(tmp_path_factory.mktemp("sim") / "repo", exclude=(".dvc/",))
    (repo / "e2e.yaml").write_text(yaml.safe_dump({"suites": {"hear2021-sim": {"configs": E2E_CONFIGS}}}))
    env = dict(os.environ, PYTHONPATH=str(repo / "src"))
    cores = str(max(2, os.cpu_count() or 2))
    cmd = [sys.executable, "-m", "snakemake", "--cores", cores, "--configfile", "e2e.yaml"]
    cmd += ["--config", "suite=hear2021-sim"]
    start = time.monotonic()
    res = subprocess.run(cmd, cwd=repo, env=env, capture_output=True, text=True, timeout=3600)
    wall = time.monotonic() - start
    print(
        f"\nhear2021-sim: one Snakemake run, 20 tasks, {len(E2E_CONFIGS)} configs, --cores {cores}: {wall:.1f} s wall"
    )
    if res.returncode != 0:
        pytest.fail(f"snakemake failed after {wall:.0f} s:\n{res.stdout[-6000:]}\n{res.stderr[-6000:]}")
    return repo


def _e2e_params(repo: Path) -> dict:
    """params.yaml with the e2e's override merged as Snakemake merges a --configfile."""
    params = load_params(repo / "params.yaml", {"suite": "hear2021-sim"})
    return deep_merge(params, {"suites": {"hear2021-sim": {"configs": E2E_CONFIGS}}})


def test_the_e2e_configs_cover_every_kind():
    """E2E_CONFIGS hold every model of the suite, every combine, both layer views and both
    poolings of the full list of configs (params.yaml)."""
    plan = make_plan(load_params(ROOT / "params.yaml", {"suite": "hear2021-sim"}))
    kinds = lambda names: (
        {m.model for c in names for m in plan.configs[c].members},
        {plan.configs[c].combine for c in names},
        {m.layer for c in names for m in plan.configs[c].members},
        {str(plan.configs[c].pooling) for c in names},
    )
    assert set(E2E_CONFIGS) <= set(SIM["configs"])
    assert kinds(E2E_CONFIGS) == kinds(SIM["configs"])
    assert set(kinds(E2E_CONFIGS)[0]) == set(MODELS)


@pytest.mark.e2e
def test_one_wide_embedding_job_per_model_sized_for_every_task(sim_run, tmp_path):
    """suites.hear2021-sim.embed_jobs: wide: one embed_wide job per model (Snakemake's own
    records), each task's batches cleared once the job was done; on a cluster each job asks
    for the runtime of the audio of all 20 tasks (resources.embed: minutes per audio hour,
    hearflow.workflow.resources), here from a dry run with 10 minutes per audio second, so
    that the sum is above the min_runtime floor."""
    from hearflow.core.smk import read_records
    from hearflow.workflow import resources as res
    from tests.test_slurm import _dry_run_resources

    repo = sim_run
    params = _e2e_params(repo)
    plan = make_plan(params)
    assert not list((repo / "logs" / "embed").glob("*/*.log"))  # no narrow job ran
    for model in MODELS:
        [record] = read_records(repo / "logs" / "embed" / f"{model}.log")
        assert record["rule"] == "embed_wide" and record["wildcards"] == {"model": model}
        assert not list((repo / "results" / "members" / model).glob(".*.shards"))

    sizes = {"resources": {"min_runtime": 1, "embed": {"default": {"minutes_per_audio_hour": 36000}}}}
    (tmp_path / "sizes.yaml").write_text(yaml.safe_dump(sizes))
    env = dict(os.environ, PYTHONPATH=str(repo / "src"))
    cmd = [sys.executable, "-m", "snakemake", "-n", "--forcerun", "embed_wide", "--configfile", "e2e.yaml"]
    cmd += [str(tmp_path / "sizes.yaml"), "--config", "suite=hear2021-sim"]
    dry = subprocess.run(cmd, cwd=repo, env=env, capture_output=True, text=True, check=True)
    planned = _dry_run_resources(dry.stdout)["embed_wide"]
    assert len(planned) == len(MODELS)
    sized = deep_merge(params, sizes)["resources"]
    want, longest = set(), {}
    for model in MODELS:
        seconds = [res.audio_seconds(repo / "data" / "tasks" / str(plan.rate(model)) / t) for t in TASKS]
        spec = res.request(sized["embed"], model)
        want.add(str(res.runtime_minutes(spec, sum(seconds), 1, 1)))
        longest[model] = res.runtime_minutes(spec, max(seconds), 1, 1)
    assert {r["runtime"] for r in planned} == want
    assert max(int(r["runtime"]) for r in planned) > max(longest.values())  # more than one task's audio


@pytest.mark.e2e
def test_every_task_goes_through_every_phase(sim_run):
    """All 20 task directories: fetched over HTTP from the mirror on 127.0.0.1, verified
    against the committed lock, extracted and resampled with their real metadata, embedded by
    the five stand-ins, ensembled into the 15 configs, probed with every metric of their
    real evaluation, and in every table."""
    repo = sim_run
    lock = json.loads((repo / "checksums" / "hear2021-sim.lock").read_text())
    configs = E2E_CONFIGS
    plan = make_plan(_e2e_params(repo))
    # results of untrained stand-ins say so (CREPE tiny's weights are real, log-mel has none)
    standin = {c: any("standin" in plan.models[m.model] for m in plan.configs[c].members) for c in configs}
    assert standin == {c: c != "logmel" for c in configs}  # passt_standin too
    for task in TASKS:
        name = data.archive_name(task)
        log = (repo / "logs" / "download" / "48000" / f"{task}.log").read_text()
        assert "fetching http://127.0.0.1:" in log and name in log, task
        archive = repo / "data" / "archives" / name
        assert lock[
            f"{name} (seed=42, scale={SIM['scale']}, min_clips={SIM['min_clips']}, max_seconds={SIM['max_seconds']})"
        ] == (hashlib.sha256(archive.read_bytes()).hexdigest())
        raw = (FIXTURES / task / "task_metadata.json").read_bytes()
        for rate in (48000, 32000, 16000):
            assert (repo / "data" / "tasks" / str(rate) / task / "task_metadata.json").read_bytes() == raw, (task, rate)
        for model in MODELS:
            assert (repo / "results" / "members" / model / task / "last").is_dir(), (model, task)
        meta = fixture(task)
        for cfg in configs:
            assert (repo / "results" / "configs" / cfg / task / "task_metadata.json").read_bytes() == raw
            scores = json.loads((repo / "results" / "probe" / cfg / task / "scores.json").read_text())
            assert scores["task"] == task and set(scores["metrics"]) == set(meta["evaluation"]), (cfg, task)
            assert scores["stand_in"] is standin[cfg], (cfg, task)
            if meta["embedding_type"] == "scene":  # the sim's labels keep every scene metric defined
                for metric in meta["evaluation"]:
                    value = scores["metrics"][metric]
                    assert value is not None and math.isfinite(value), (cfg, task, metric, value)
    metrics = json.loads((repo / "reports" / "metrics.json").read_text())
    assert set(metrics) == set(configs) and all(set(metrics[c]) == set(TASKS) for c in configs)
    assert set(plan.tables) == {"table2_baselines", "table4_avg_vs_cat", "table5_crepe"}
    for table in plan.tables:
        text = (repo / "reports" / "tables" / f"{table}.md").read_text()
        assert all(f"| {task} |" in text for task in TASKS), table


@pytest.mark.e2e
def test_the_planner_predicts_what_the_run_wrote(sim_run):
    """hearflow.workflow.plan's sizes for hear2021-sim against the bytes the run wrote: every archive,
    extracted and resampled folder, member view and config view of every task within 10%."""
    from hearflow.workflow import plan

    repo = sim_run
    p = plan.make(_e2e_params(repo), "hear2021-sim", repo)
    off = []
    for row in p["tasks"]:
        task = row["task"]
        expect = {
            f"data/archives/{data.archive_name(task)}": row["archive_gb"],
            f"data/tasks/48000/{task}": row["extracted_gb"],
            f"data/mirror/hear2021-sim/{data.archive_name(task)}": row["mirror_gb"],
        }
        expect |= {f"data/tasks/{rate}/{task}": gb for rate, gb in row["resampled_gb"].items()}
        expect |= {f"results/members/{m}/{task}": gb for m, gb in row["member_gb"].items()}
        expect |= {f"results/configs/{c}/{task}": gb for c, gb in row["config_gb"].items()}
        for rel, gb in expect.items():
            got = _size(repo / rel)
            off.append((abs(gb * 1e9 / got - 1), rel, round(gb * 1e9), got))
    off.sort(reverse=True)
    print("\nplanner vs run, worst five:", *(f"{r}: {e} vs {g} bytes ({d:.1%})" for d, r, e, g in off[:5]), sep="\n  ")
    assert len(off) == 20 * (3 + 2 + len(MODELS) + len(E2E_CONFIGS))
    assert off[0][0] <= 0.10, off[:5]
