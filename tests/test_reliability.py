"""Bad inputs, killed jobs and determinism: each case handled as docs/reliability.md's table says."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from hearflow.core import hear
from hearflow.core.audio import AudioError, read_clip
from hearflow.core.provenance import read_run_records
from hearflow.data import archives as data
from hearflow.embed.job import embed_task
from hearflow.embed.shards import shard_dir
from tests.conftest import ROOT, make_task

CREPE = {"module": "crepe", "options": {"capacity": "tiny"}}


def _embed(task, out, **kw):
    return embed_task(task.root, out, module=CREPE["module"], options=CREPE["options"], progress=False, **kw)


def _clip(task, split="train", i=0) -> Path:
    return task.audio_dir(16000, split) / f"{i:03d}.wav"


def test_corrupt_wav_fails_before_embedding_and_names_the_file(tmp_path):
    task = make_task(tmp_path / "t")
    _clip(task, "test", 1).write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    with pytest.raises(AudioError, match=r"test/001\.wav: unreadable audio .*re-extract"):
        _embed(task, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_truncated_wav_is_read_up_to_its_cut(tmp_path):
    task = make_task(tmp_path / "t")
    path = _clip(task)
    full = read_clip(path, 16000)
    path.write_bytes(path.read_bytes()[: 44 + 2 * 8000])  # header + the first 0.5 s
    cut = read_clip(path, 16000)
    assert len(cut) == 8000 and np.array_equal(cut, full[:8000])
    out = _embed(task, tmp_path / "out")
    assert np.isfinite(hear.read_embeddings(out / "last", "train")).all()


def test_wrong_rate_inside_a_rate_folder_names_the_fix(tmp_path):
    task = make_task(tmp_path / "t")
    sf.write(_clip(task, "valid", 0), np.zeros(22050, np.float32), 22050)
    with pytest.raises(AudioError, match=r"valid/000\.wav: 22050 Hz inside a 16000 Hz folder; resample"):
        _embed(task, tmp_path / "out")


def test_stereo_is_averaged_to_mono_with_a_warning(tmp_path, caplog):
    task = make_task(tmp_path / "t")
    mono = read_clip(_clip(task), 16000)
    sf.write(_clip(task), np.stack([mono, np.zeros_like(mono)], axis=1), 16000, subtype="FLOAT")
    with caplog.at_level(logging.WARNING):
        stereo = read_clip(_clip(task), 16000)
    assert "2 channels, averaged to mono" in caplog.text
    np.testing.assert_allclose(stereo, mono / 2, atol=1e-7)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_samples_are_refused(tmp_path, bad):
    task = make_task(tmp_path / "t")
    audio = np.zeros(16000, np.float32)
    audio[100] = bad
    sf.write(_clip(task, "test", 0), audio, 16000, subtype="FLOAT")
    with pytest.raises(AudioError, match=r"test/000\.wav: NaN or Inf samples"):
        _embed(task, tmp_path / "out")


@pytest.mark.parametrize("module", ["crepe", "logmel"])
def test_all_zero_clip_gives_finite_embeddings(tmp_path, module):
    rate = 16000 if module == "crepe" else 32000
    task = make_task(tmp_path / "t", sample_rate=rate)
    sf.write(task.audio_dir(rate, "train") / "000.wav", np.zeros(rate, np.float32), rate)
    options = {"capacity": "tiny"} if module == "crepe" else {}
    out = embed_task(task.root, tmp_path / "out", module=module, options=options, progress=False)
    assert np.isfinite(hear.read_embeddings(out / "last", "train")).all()


def test_all_zero_clip_through_an_ssl_model_is_finite(tmp_path, standins):
    task = make_task(tmp_path / "t")
    sf.write(_clip(task), np.zeros(16000, np.float32), 16000)
    out = embed_task(
        task.root, tmp_path / "out", module="ssl", options={"checkpoint": str(standins["hubert"])}, progress=False
    )
    assert np.isfinite(hear.read_embeddings(out / "fusion", "train")).all()


def test_zero_length_clip_stops_before_any_embedding(tmp_path):
    task = make_task(tmp_path / "t")
    sf.write(_clip(task, "valid", 1), np.zeros(0, np.float32), 16000)
    with pytest.raises(AudioError, match=r"toy-v1-full: 1 clip\(s\) without samples .*valid/001\.wav.*re-extract"):
        _embed(task, tmp_path / "out")
    assert not shard_dir(tmp_path / "out").exists()  # stopped before the first batch


def test_clip_shorter_than_the_model_window_is_padded_with_a_warning(tmp_path, standins, caplog):
    task = make_task(tmp_path / "t", durations={"train": [1.0, 0.015], "valid": [1.0], "test": [1.0]})
    with caplog.at_level(logging.WARNING):
        out = embed_task(
            task.root, tmp_path / "out", module="ssl", options={"checkpoint": str(standins["wav2vec2"])}, progress=False
        )
    assert "001.wav has 240 samples, fewer than the model's minimum 400: zero-padded" in caplog.text
    emb = hear.read_embeddings(out / "last", "train")
    assert emb.shape[0] == 2 and np.isfinite(emb).all()


def test_label_file_naming_a_missing_clip_stops_before_work(tmp_path):
    task = make_task(tmp_path / "t")
    _clip(task, "test", 1).unlink()
    with pytest.raises(hear.TaskFormatError, match=r"toy-v1-full/test\.json names 001\.wav, missing from .*re-extract"):
        _embed(task, tmp_path / "out")


def test_unknown_label_stops_before_work(tmp_path):
    task = make_task(tmp_path / "t")
    labels = json.loads((task.root / "train.json").read_text())
    labels["000.wav"] = ["violin"]
    (task.root / "train.json").write_text(json.dumps(labels))
    with pytest.raises(
        hear.TaskFormatError, match=r"train\.json: 000\.wav has labels \['violin'\] not in labelvocabulary"
    ):
        _embed(task, tmp_path / "out")


def test_truncated_archive_names_the_archive_and_the_fix(tmp_path):
    task = make_task(tmp_path / "src", name="toy-v1-full", sample_rate=48000)
    archive = tmp_path / data.archive_name("toy-v1-full")
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(task.root, arcname="tasks/toy-v1-full")
    archive.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    with pytest.raises(data.ArchiveError, match="truncated or corrupt archive .* delete it and rerun"):
        data.extract_task(archive, tmp_path / "tasks" / "toy-v1-full", "toy-v1-full")
    assert not (tmp_path / "tasks" / "toy-v1-full").exists()
    assert not list((tmp_path / "tasks").glob(".*"))  # no half-extracted folder left behind


# ------------------------------------------------------------------ killed jobs and resuming

_EMBED_SCRIPT = """
import logging, sys
from pathlib import Path
logging.basicConfig(level=logging.INFO)
from hearflow.embed.job import embed_task
embed_task(Path(sys.argv[1]), Path(sys.argv[2]), module="crepe", options={"capacity": "tiny"},
           batch_size=1, progress=False)
"""


def _run_embed(task_root: Path, out: Path) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), OMP_NUM_THREADS="1")
    return subprocess.Popen(
        [sys.executable, "-c", _EMBED_SCRIPT, str(task_root), str(out)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_sigkilled_embedding_job_resumes_from_its_shards(tmp_path):
    durations = {"train": [2.0] * 24, "valid": [2.0] * 8, "test": [2.0] * 8}
    task = make_task(tmp_path / "t", durations=durations)
    total = sum(len(v) for v in durations.values())  # batch_size=1: one shard per clip

    reference = _run_embed(task.root, tmp_path / "uninterrupted")
    assert reference.wait(timeout=600) == 0, reference.stderr.read()

    out = tmp_path / "out"
    job = _run_embed(task.root, out)
    deadline = time.time() + 600
    while len(list(shard_dir(out).glob("*.npz"))) < 5:
        assert job.poll() is None, "the job ended before it could be killed"
        assert time.time() < deadline
        time.sleep(0.05)
    job.send_signal(signal.SIGKILL)
    job.wait()
    finished = len(list(shard_dir(out).glob("*.npz")))
    assert 5 <= finished < total and not out.exists()  # killed midway: no output that looks done

    rerun = _run_embed(task.root, out)
    assert rerun.wait(timeout=600) == 0, rerun.stderr.read()
    [record] = read_run_records(rerun.stderr.read())  # the job's log, not its result (issue 18)
    assert record["shards_reused"] == finished and record["shards_computed"] == total - finished
    assert (out / "provenance.json").read_bytes() == (tmp_path / "uninterrupted" / "provenance.json").read_bytes()
    assert not shard_dir(out).exists() and not list(tmp_path.glob(".out.*.tmp"))
    for view in ("last", "fusion"):
        for split in durations:
            for suffix in (".embeddings.npy", ".embedding-dimensions.json", ".target-labels.pkl"):
                name = f"{split}{suffix}"
                assert (out / view / name).read_bytes() == (tmp_path / "uninterrupted" / view / name).read_bytes()


def test_a_wide_embedding_job_stopped_in_its_second_task_reuses_the_first_one(tmp_path, monkeypatch, caplog):
    """embed_tasks (rule embed_wide): the job dies in the second task's third batch; Snakemake
    removes every output of the failed job, the first task's too; the restarted job computes
    only the second task's missing batches, writes what narrow jobs (embed_task per task)
    write, and clears every task's batches at the end."""
    import shutil

    from hearflow.embed import job

    # two tasks of 4 + 2 + 2 clips, one batch per clip
    tasks = [make_task(tmp_path / "data", name=f"toy{n}-v1-full", seed=i) for i, n in enumerate("ab")]
    narrow = [_embed(t, tmp_path / "narrow" / t.root.name, batch_size=1) for t in tasks]
    outs = [tmp_path / "members" / t.root.name for t in tasks]
    assert [t.root.name for t in tasks] == ["toya-v1-full", "toyb-v1-full"]
    pairs = [(t.root, o) for t, o in zip(tasks, outs, strict=True)]
    real, calls = job._embed_batch, []

    def dies_in_b(*args, **kw):
        calls.append(Path(args[2]).parents[1].name)  # the task (audio_dir: <task>/16000/<split>)
        if calls.count("toyb-v1-full") == 3:
            raise RuntimeError("killed")
        return real(*args, **kw)

    monkeypatch.setattr(job, "_embed_batch", dies_in_b)
    with pytest.raises(RuntimeError, match="killed"):
        job.embed_tasks(pairs, **CREPE, batch_size=1, progress=False)
    assert calls.count("toya-v1-full") == 8 and outs[0].is_dir() and not outs[1].exists()
    shutil.rmtree(outs[0])  # what Snakemake does with a failed job's outputs

    monkeypatch.setattr(job, "_embed_batch", real)
    with caplog.at_level(logging.INFO, logger="hearflow"):
        job.embed_tasks(pairs, **CREPE, batch_size=1, progress=False)
    records = read_run_records(caplog.text)
    assert [(r["shards_reused"], r["shards_computed"]) for r in records] == [(8, 0), (2, 6)]
    for got, want in zip(outs, narrow, strict=True):
        assert not shard_dir(got).exists()
        files = sorted(p.relative_to(want) for p in want.rglob("*") if p.is_file())
        assert files == sorted(p.relative_to(got) for p in got.rglob("*") if p.is_file())
        assert all((got / f).read_bytes() == (want / f).read_bytes() for f in files), got


def test_shards_from_other_settings_are_not_reused(tmp_path, caplog):
    task = make_task(tmp_path / "t")
    stale = shard_dir(tmp_path / "out")
    stale.mkdir()
    (stale / "manifest.json").write_text('{"module": "ssl"}')
    np.savez(
        stale / "train-000000.npz",
        names=np.array(["000.wav"]),
        n_layers=np.array(1),
        per_layer=np.full((1, 1, 256), 7.0, np.float32),
    )
    with caplog.at_level(logging.INFO, logger="hearflow"):
        out = _embed(task, tmp_path / "out", batch_size=1)
    [record] = read_run_records(caplog.text)
    assert record["shards_reused"] == 0 and record["shards_computed"] == 8  # 4 + 2 + 2 clips, one a batch
    assert not (hear.read_embeddings(out / "last", "train") == 7.0).all()


def test_embedding_is_byte_identical_across_processes(tmp_path):
    task = make_task(tmp_path / "t")
    runs = []
    for name in ("a", "b"):
        job = _run_embed(task.root, tmp_path / name)
        assert job.wait(timeout=600) == 0, job.stderr.read()
        runs.append(tmp_path / name)
    for split in task.splits:
        for view in ("last", "fusion"):
            a = (runs[0] / view / f"{split}.embeddings.npy").read_bytes()
            assert a == (runs[1] / view / f"{split}.embeddings.npy").read_bytes()


# --- disk full while an output is written (issue 35) -----------------------------------------

_FULL_JOB = """
import resource, sys
from types import SimpleNamespace
from hearflow.core.io import atomic_path
from hearflow.core.smk import run

out, log = sys.argv[1], sys.argv[2]
resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))  # no file past 64 KiB: EFBIG

def job(smk):
    with atomic_path(smk.output[0]) as tmp:
        tmp.write_bytes(b"x" * (1 << 20))  # 1 MiB: cannot be written

run(SimpleNamespace(rule="embed", wildcards={}, threads=1, log=[log], resources={}, config={}, output=[out]), job)
"""


def test_a_job_whose_disk_is_full_says_so_and_where_and_leaves_nothing(tmp_path):
    """A write that fails for want of room (here a file-size limit, EFBIG; ENOSPC and EDQUOT
    alike, and a real full filesystem in tests/test_dvc.py) ends the job with exit status 1 and
    a message naming the rule, the output, the free space there and the fix; no file that
    looks finished, and no temporary one, is left beside the output."""
    out, log = tmp_path / "results" / "emb.npy", tmp_path / "job.log"
    res = subprocess.run(
        [sys.executable, "-c", _FULL_JOB, str(out), str(log)],
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(ROOT / "src")),
    )
    assert res.returncode == 1, res.stderr
    message = res.stderr.strip().splitlines()[-1]
    assert message.startswith(f"hearflow: disk full: rule embed could not write its outputs: {out} (")
    assert "bytes free there) [EFBIG: File too large" in message and "run the same command again" in message
    assert "disk full: rule embed" in log.read_text() and "Traceback" in log.read_text()  # details in the log
    assert list(out.parent.iterdir()) == []  # neither the output nor its temporary sibling
