"""Sanity floors: real features of the demo score far above chance, and the same features
with their labels shuffled fall to chance. A misalignment of embeddings and labels (a wrong
sort order, a split read against another's labels) passes every shape check and still gives
finite metrics; only this catches it."""

from __future__ import annotations

import pickle
import shutil

import numpy as np
import pytest

from benchmarks.probe_compare import LOGMEL_48K
from hearflow.core import hear
from hearflow.data.demo import synthesize_task
from hearflow.data.resample import resample_task
from hearflow.embed.job import embed_task
from hearflow.probe import probe_task

GRID = {
    "hidden_layers": [1],
    "hidden_dim": [128],
    "lr": [1e-3],
    "initialization": ["xavier_uniform"],
    "max_epochs": [40],
    "patience": [5],
}

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _shuffled(emb_dir, out, seed: int = 0):
    """A copy of an embedding dir whose target labels are permuted within each split."""
    shutil.copytree(emb_dir, out)
    rng = np.random.default_rng(seed)
    for split in hear.Task.load(out).splits:
        labels = hear.read_target_labels(out, split)
        with open(out / f"{split}.target-labels.pkl", "wb") as f:
            pickle.dump([labels[i] for i in rng.permutation(len(labels))], f)
    return out


def _probe(emb_dir):
    return probe_task(emb_dir, grid=GRID, max_grid_points=1, seed=42, device="cpu")["metrics"]


def test_logmel_on_vowels_is_far_above_chance_and_shuffled_labels_are_not(tmp_path):
    """5 vowels (chance 0.2): formants are what a log-mel spectrum shows."""
    task = synthesize_task("demo_vowels-v1-full", tmp_path / "tasks", seed=42, scale=0.5)
    emb = (
        embed_task(task, tmp_path / "logmel", module="logmel", options=LOGMEL_48K, device="cpu", progress=False)
        / "last"
    )
    assert _probe(emb)["top1_acc"] >= 0.6  # 0.79 measured (3 folds, one small grid point)
    assert _probe(_shuffled(emb, tmp_path / "shuffled"))["top1_acc"] <= 0.45


def test_crepe_on_tones_is_far_above_chance_and_shuffled_labels_are_not(tmp_path):
    """24 pitches (chance 1/24 for pitch, 1/12 for chroma): CREPE's pitch features."""
    task = synthesize_task("demo_tones-v1-full", tmp_path / "tasks", seed=42, scale=0.3)
    task16 = resample_task(task, tmp_path / "tasks16" / task.name, sr_in=48000, sr_out=16000)
    emb = (
        embed_task(
            task16, tmp_path / "crepe", module="crepe", options={"capacity": "tiny"}, device="cpu", progress=False
        )
        / "last"
    )
    good = _probe(emb)
    assert good["pitch_acc"] >= 0.5 and good["chroma_acc"] >= 0.5
    bad = _probe(_shuffled(emb, tmp_path / "shuffled"))
    assert bad["pitch_acc"] <= 0.2 and bad["chroma_acc"] <= 0.3
