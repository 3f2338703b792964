"""heareval's on-disk embedding format: raw float32 memmap + dimensions, labels, timestamps."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest

from hearflow.core import hear
from tests.conftest import ROOT, make_task


def test_embeddings_are_a_raw_memmap_without_npy_header(tmp_path):
    x = np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32)
    hear.write_embeddings(tmp_path, "train", x)
    raw = (tmp_path / "train.embeddings.npy").read_bytes()
    assert len(raw) == x.nbytes and not raw.startswith(b"\x93NUMPY")
    mm = np.memmap(tmp_path / "train.embeddings.npy", dtype=np.float32, mode="r", shape=(5, 3))
    np.testing.assert_array_equal(mm, x)
    assert (tmp_path / "train.embedding-dimensions.json").read_text().strip() == "[5, 3]"
    np.testing.assert_array_equal(hear.read_embeddings(tmp_path, "train"), x)


def test_row_blocks_write_the_same_bytes_as_one_matrix(tmp_path):
    rng = np.random.default_rng(0)
    blocks = [rng.normal(size=(n, 3)).astype(np.float32) for n in (4, 1, 7)]
    hear.write_embeddings(tmp_path / "one", "train", np.concatenate(blocks))
    hear.write_embeddings(tmp_path / "blocks", "train", blocks)
    for name in ("train.embeddings.npy", "train.embedding-dimensions.json"):
        assert (tmp_path / "blocks" / name).read_bytes() == (tmp_path / "one" / name).read_bytes()
    bad = [blocks[0], np.full((2, 3), np.inf, np.float32)]
    with pytest.raises(ValueError, match="2 embedding rows hold NaN or Inf"):
        hear.write_embeddings(tmp_path / "bad", "train", bad)
    with pytest.raises(ValueError, match="blocks of one D"):
        hear.write_embeddings(tmp_path / "bad", "train", [blocks[0], np.zeros((2, 4), np.float32)])
    assert not (tmp_path / "bad" / "train.embeddings.npy").exists()


def test_non_finite_embeddings_are_refused(tmp_path):
    x = np.zeros((3, 2), np.float32)
    x[1, 0] = np.nan
    with pytest.raises(ValueError, match="1 embedding rows hold NaN or Inf"):
        hear.write_embeddings(tmp_path, "train", x)
    assert not (tmp_path / "train.embeddings.npy").exists()


def test_scene_split_round_trip(tmp_path):
    task = make_task(tmp_path / "tasks")
    names = sorted(task.labels("train"))
    embs = [np.full(4, i, np.float32) for i in range(len(names))]
    out = tmp_path / "emb"
    hear.copy_task_files(task, out)
    hear.write_split(out, task, "train", names, embs)
    assert hear.read_embeddings(out, "train").shape == (len(names), 4)
    with open(out / "train.target-labels.pkl", "rb") as f:
        assert pickle.load(f) == [task.labels("train")[n] for n in names]
    assert hear.Task.load(out).metadata == task.metadata  # copied unchanged


def test_event_split_writes_one_row_per_timestamp(tmp_path):
    task = make_task(tmp_path / "tasks", embedding_type="event")
    names = sorted(task.labels("valid"))
    ts = np.array([50.0, 100.0, 500.0, 950.0])
    out = tmp_path / "emb"
    hear.write_split(out, task, "valid", names, [np.ones((4, 2), np.float32)] * len(names), [ts] * len(names))
    rows = hear.read_filename_timestamps(out, "valid")
    assert rows[:4] == [(names[0], 50.0), (names[0], 100.0), (names[0], 500.0), (names[0], 950.0)]
    labels = hear.read_target_labels(out, "valid")
    event = task.labels("valid")[names[0]][0]  # 100 ms .. 900 ms
    assert labels[:4] == [[], [event["label"]], [event["label"]], []]
    assert hear.read_embeddings(out, "valid").shape == (4 * len(names), 2)


def test_layout_check_names_the_missing_clip(tmp_path):
    task = make_task(tmp_path / "tasks")
    (task.root / "16000" / "test" / "001.wav").unlink()
    with pytest.raises(hear.TaskFormatError, match="test.json names 001.wav, missing"):
        hear.check_task_layout(task, 16000)


def test_metadata_validation_follows_hear_preprocess(tmp_path):
    """hear-preprocess v2021.1.0 (util/task_config.py) forbids nfolds for trainvaltest and
    requires it (>= 3) for k-fold modes; extra keys (mode, tmp_dir, download_urls, ...) are kept."""
    base = {
        "task_name": "t",
        "version": "v1",
        "embedding_type": "scene",
        "prediction_type": "multiclass",
        "sample_duration": 1.0,
        "evaluation": ["top1_acc"],
        "mode": "full",
        "tmp_dir": "_workdir",
    }
    hear.validate_metadata({**base, "split_mode": "trainvaltest", "splits": ["train", "valid", "test"]}, where="w")
    hear.validate_metadata(
        {**base, "split_mode": "new_split_kfold", "nfolds": 3, "splits": ["fold00", "fold01", "fold02"]}, where="w"
    )
    with pytest.raises(hear.TaskFormatError, match="nfolds=3 with split_mode trainvaltest"):
        hear.validate_metadata(
            {**base, "split_mode": "trainvaltest", "nfolds": 3, "splits": ["train", "valid", "test"]}, where="w"
        )
    with pytest.raises(hear.TaskFormatError, match="nfolds=4 but 'splits' lists 3 folds"):
        hear.validate_metadata(
            {**base, "split_mode": "presplit_kfold", "nfolds": 4, "splits": ["fold00", "fold01", "fold02"]}, where="w"
        )
    with pytest.raises(hear.TaskFormatError, match="trainvaltest needs splits"):
        hear.validate_metadata({**base, "split_mode": "trainvaltest", "splits": ["train", "test"]}, where="w")
    with pytest.raises(hear.TaskFormatError, match=r"missing keys \['splits'\]"):
        hear.validate_metadata({**base, "split_mode": "trainvaltest"}, where="w")


@pytest.mark.parametrize(
    "task_dir", sorted(p.name for p in (ROOT / "tests" / "fixtures" / "hear2021").iterdir() if p.is_dir())
)
def test_every_real_hear2021_metadata_is_accepted(task_dir):
    """The 20 task_metadata.json files as hear-preprocess v2021.1.0 writes them (fixtures with
    their sources in tests/fixtures/hear2021): all accepted, nfolds read only for k-fold."""
    metadata = json.loads((ROOT / "tests" / "fixtures" / "hear2021" / task_dir / "task_metadata.json").read_text())
    hear.validate_metadata(metadata, where=task_dir)
    assert f"{metadata['task_name']}-{metadata['version']}-{metadata['mode']}" == task_dir
    assert ("nfolds" in metadata) == (metadata["split_mode"] != "trainvaltest")
