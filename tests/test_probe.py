"""The native probe engine on synthetic heareval-format embedding directories.

PYTHONPATH=src .venv/bin/python -m pytest tests/test_probe.py -q
"""

from __future__ import annotations

import json
import os
import random
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.model_selection import ParameterGrid

from hearflow.core.hear import Task, labels_at_timestamps, write_split, write_vocabulary
from hearflow.core.io import write_json
from hearflow.probe import DEFAULT_GRID, data_splits, events_from_frames, expand_grid, probe_task, task_grid
from hearflow.probe.kernels import bernoulli_keep, keep_freed_memory
from hearflow.probe.stacked import FullyConnectedPrediction, StackedMLP, StackedOptimizer, member_seeds

# One small grid point: trains in well under a second per split on CPU.
TINY_GRID = {
    "hidden_layers": [1],
    "hidden_dim": [32],
    "lr": [1e-2],
    "initialization": ["xavier_uniform"],
    "max_epochs": [30],
    "patience": [5],
    "batch_size": [64],
}
SCENE_METRICS = ("top1_acc", "pitch_acc", "chroma_acc", "mAP", "d_prime", "aucroc")
EVENT_METRICS = (
    "event_onset_200ms_fms",
    "event_onset_50ms_fms",
    "event_onset_offset_50ms_20perc_fms",
    "segment_1s_er",
)


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny probes: one thread is fastest


def make_task(
    root: Path,
    *,
    embedding_type: str,
    prediction_type: str,
    splits: dict[str, dict],
    vocab: list[str],
    evaluation: list[str],
    split_mode: str = "trainvaltest",
    **extra,
) -> Task:
    """Write metadata, vocabulary and `{split}.json` labels; return the loaded Task."""
    metadata = {
        "task_name": root.name,
        "version": "test",
        "embedding_type": embedding_type,
        "prediction_type": prediction_type,
        "split_mode": split_mode,
        "sample_duration": 4.0,
        "evaluation": evaluation,
        "splits": list(splits),
        **({"nfolds": len(splits)} if split_mode != "trainvaltest" else {}),
        **extra,
    }
    write_json(root / "task_metadata.json", metadata)
    write_vocabulary(root / "labelvocabulary.csv", vocab)
    for split, labels in splits.items():
        write_json(root / f"{split}.json", labels)
    return Task.load(root)


def scene_task(
    root: Path,
    *,
    prediction_type: str,
    evaluation: list[str],
    sizes: dict[str, int],
    split_mode: str = "trainvaltest",
    nlabels: int = 5,
    seed: int = 0,
    **extra,
) -> Path:
    """Gaussian blobs: a clip's embedding is the sum of its labels' means plus N(0, 1)."""
    rng = np.random.default_rng(seed)
    dim = 16
    vocab = [f"c{i}" for i in range(nlabels)]
    means = 4.0 * rng.normal(size=(nlabels, dim))
    clips: dict[str, dict] = {}
    for split, n in sizes.items():
        if prediction_type == "multiclass":
            picks = [[i % nlabels] for i in range(n)]
        else:
            picks = [list(np.flatnonzero(rng.random(nlabels) < 0.4)) for _ in range(n)]
        clips[split] = {f"{split}_{i}.wav": p for i, p in enumerate(picks)}
    task = make_task(
        root,
        embedding_type="scene",
        prediction_type=prediction_type,
        splits={s: {f: [vocab[j] for j in p] for f, p in c.items()} for s, c in clips.items()},
        vocab=vocab,
        evaluation=evaluation,
        split_mode=split_mode,
        **extra,
    )
    for split, c in clips.items():
        embs = [means[p].sum(axis=0) + rng.normal(size=dim) for p in c.values()]
        write_split(root, task, split, list(c), embs)
    return root


def event_task(root: Path, *, seed: int = 0, **extra) -> Path:
    """4 s files, a frame every 50 ms; one 1 s "dog" then one 1 s "bell" event per file.

    Event boundaries fall on frames, so a perfect frame classifier gives exact events.
    """
    rng = np.random.default_rng(seed)
    dim, hop = 8, 50.0
    times = np.arange(0.0, 4000.0, hop)
    vocab = ["dog", "bell"]
    means = {(): np.zeros(dim), ("dog",): 3 * np.eye(dim)[0], ("bell",): 3 * np.eye(dim)[1]}
    sizes = {"train": 16, "valid": 6, "test": 6}
    labels = {}
    for split, n in sizes.items():
        labels[split] = {}
        for i in range(n):
            dog, bell = 250.0 * rng.integers(1, 4), 250.0 * rng.integers(9, 11)
            labels[split][f"{split}_{i}.wav"] = [
                {"label": "dog", "start": dog, "end": dog + 1000.0},
                {"label": "bell", "start": bell, "end": bell + 1000.0},
            ]
    task = make_task(
        root,
        embedding_type="event",
        prediction_type="multilabel",
        splits=labels,
        vocab=vocab,
        evaluation=list(EVENT_METRICS),
        **extra,
    )
    for split, files in labels.items():
        embs = [
            np.stack([means[tuple(a)] for a in labels_at_timestamps(events, times)])
            + 0.3 * rng.normal(size=(len(times), dim))
            for events in files.values()
        ]
        write_split(root, task, split, list(files), embs, [times] * len(files))
    return root


def test_multiclass_trainvaltest_scores_separable_blobs(tmp_path):
    emb = scene_task(
        tmp_path / "blobs",
        prediction_type="multiclass",
        evaluation=["top1_acc", "pitch_acc", "chroma_acc"],
        sizes={"train": 200, "valid": 60, "test": 60},
    )
    result = probe_task(emb, grid=TINY_GRID, device="cpu")
    assert result["engine"] == "native" and result["task"] == "blobs"
    assert set(result["metrics"]) == {"top1_acc", "pitch_acc", "chroma_acc"}
    assert result["metrics"]["top1_acc"] >= 0.95
    assert result["metrics"]["pitch_acc"] == result["metrics"]["top1_acc"]
    assert result["metrics"]["chroma_acc"] >= result["metrics"]["top1_acc"]
    assert [f["test"] for f in result["folds"]] == [["test"]]
    assert result["metrics_std"] == {m: 0.0 for m in result["metrics"]}


def test_multilabel_map_dprime_aucroc_high_on_separable_blobs(tmp_path):
    emb = scene_task(
        tmp_path / "tags",
        prediction_type="multilabel",
        evaluation=["mAP", "d_prime", "aucroc"],
        sizes={"train": 300, "valid": 100, "test": 100},
        nlabels=4,
    )
    metrics = probe_task(emb, grid=TINY_GRID, device="cpu")["metrics"]
    assert set(metrics) == {"mAP", "d_prime", "aucroc"}
    assert metrics["mAP"] >= 0.9
    assert metrics["aucroc"] >= 0.95
    assert metrics["d_prime"] >= 2.0


def test_early_stopping_counts_patience_in_validation_checks(tmp_path):
    emb = scene_task(
        tmp_path / "blobs",
        prediction_type="multiclass",
        evaluation=["top1_acc"],
        sizes={"train": 200, "valid": 60, "test": 60},
    )
    grid = {**TINY_GRID, "max_epochs": [300], "patience": [2], "check_val_every_n_epoch": [3]}
    (fold,) = probe_task(emb, grid=grid, device="cpu")["folds"]
    # Stops at the 2nd check without strict improvement; the best checkpoint is kept.
    assert fold["epochs"] < 300
    assert fold["epochs"] - 1 == fold["best_epoch"] + 2 * 3
    assert (fold["best_epoch"] + 1) % 3 == 0


def test_validation_loss_is_monitored_without_scoring_for_early_stopping(tmp_path):
    emb = scene_task(
        tmp_path / "blobs",
        prediction_type="multiclass",
        evaluation=["top1_acc"],
        sizes={"train": 200, "valid": 60, "test": 60},
        use_scoring_for_early_stopping=False,
    )
    result = probe_task(emb, grid=TINY_GRID, device="cpu")
    # A cross-entropy far below chance (ln 5 = 1.6), not an accuracy.
    assert 0.0 < result["validation_score"] < 0.5
    assert result["metrics"]["top1_acc"] >= 0.95


def test_data_splits_rotate_sorted_folds_as_heareval():
    metadata = {
        "task_name": "t",
        "split_mode": "new_split_kfold",
        "splits": ["fold02", "fold00", "fold01", "fold03"],
    }
    # heareval's data_splits_from_folds: test = fold i, valid = fold i+1 (mod k), train = rest.
    assert data_splits(metadata) == [
        {"train": ["fold02", "fold03"], "valid": ["fold01"], "test": ["fold00"]},
        {"train": ["fold00", "fold03"], "valid": ["fold02"], "test": ["fold01"]},
        {"train": ["fold00", "fold01"], "valid": ["fold03"], "test": ["fold02"]},
        {"train": ["fold01", "fold02"], "valid": ["fold00"], "test": ["fold03"]},
    ]
    trainvaltest = {
        "task_name": "t",
        "split_mode": "trainvaltest",
        "splits": ["train", "valid", "test"],
    }
    assert data_splits(trainvaltest) == [{"train": ["train"], "valid": ["valid"], "test": ["test"]}]


def kfold_blobs(root: Path, clips_per_fold: int) -> Path:
    """A 3-fold multiclass task of Gaussian blobs, scored by top1_acc."""
    return scene_task(
        root,
        prediction_type="multiclass",
        evaluation=["top1_acc"],
        sizes={f"fold0{i}": clips_per_fold for i in range(3)},
        split_mode="new_split_kfold",
    )


def test_kfold_gives_one_result_per_fold_in_rotation(tmp_path):
    emb = kfold_blobs(tmp_path / "folds", 80)
    result = probe_task(emb, grid=TINY_GRID, device="cpu")
    assert [f["test"] for f in result["folds"]] == [["fold00"], ["fold01"], ["fold02"]]
    accs = [f["metrics"]["top1_acc"] for f in result["folds"]]
    assert result["metrics"]["top1_acc"] == pytest.approx(np.mean(accs))
    assert result["metrics_std"]["top1_acc"] == pytest.approx(np.std(accs, ddof=1))
    assert min(accs) >= 0.9
    assert all(f["epochs"] >= 3 for f in result["folds"])


def test_event_task_scores_near_perfect_on_clean_layout(tmp_path):
    result = probe_task(event_task(tmp_path / "events"), grid=TINY_GRID, device="cpu")
    metrics = result["metrics"]
    assert set(metrics) == set(EVENT_METRICS)
    assert metrics["event_onset_200ms_fms"] >= 0.95
    assert metrics["event_onset_50ms_fms"] >= 0.95
    assert metrics["event_onset_offset_50ms_20perc_fms"] >= 0.95
    assert metrics["segment_1s_er"] <= 0.05
    # segment_1s_er is not the primary score: validation maximises the onset F-measure.
    assert result["validation_score"] >= 0.95
    assert result["postprocessing"] in [
        {"median_filter_ms": 250, "min_duration": 125},
        {"median_filter_ms": 250, "min_duration": 250},
    ]


def test_event_postprocessing_grid_comes_from_metadata(tmp_path):
    post = {"median_filter_ms": [100], "min_duration": [500]}
    emb = event_task(tmp_path / "events", evaluation_params={"event_postprocessing_grid": post})
    result = probe_task(emb, grid=TINY_GRID, device="cpu")
    assert result["postprocessing"] == {"median_filter_ms": 100, "min_duration": 500}


def test_event_loss_stopping_needs_a_single_postprocessing_point(tmp_path):
    emb = event_task(tmp_path / "events", use_scoring_for_early_stopping=False)
    with pytest.raises(ValueError, match="one point"):
        probe_task(emb, grid=TINY_GRID, device="cpu")


def test_same_seed_gives_identical_results(tmp_path):
    emb = scene_task(
        tmp_path / "blobs",
        prediction_type="multiclass",
        evaluation=["top1_acc", "mAP"],
        sizes={"train": 200, "valid": 60, "test": 60},
        seed=3,
    )
    grid = {**TINY_GRID, "dropout": [0.5], "shuffle_train": [True], "lr": [1e-2, 1e-3]}
    first = probe_task(emb, grid=grid, seed=7, device="cpu")
    second = probe_task(emb, grid=grid, seed=7, device="cpu")
    assert first == second


def test_expand_grid_matches_heareval_default_order():
    # heareval 2021.1.3: ParameterGrid(PARAM_GRID), seed_everything(42), random.shuffle,
    # first 8 (checked against heareval's own PARAM_GRID).
    points = expand_grid(task_grid(None, {"task_name": "t"}), seed=42, max_points=8)
    assert [(p["hidden_layers"], p["lr"], p["initialization"]) for p in points] == [
        (1, 1e-4, "xavier_normal"),
        (2, 1e-3, "xavier_uniform"),
        (1, 1e-3, "xavier_normal"),
        (1, 3.2e-4, "xavier_normal"),
        (2, 3.2e-4, "xavier_normal"),
        (2, 3.2e-4, "xavier_uniform"),
        (2, 3.2e-3, "xavier_normal"),
        (2, 3.2e-3, "xavier_uniform"),
    ]
    dcase = task_grid(None, {"task_name": "dcase2016_task2"})
    assert dcase["check_val_every_n_epoch"] == [10]
    assert task_grid({"hidden_dim": 64}, {"task_name": "t"})["hidden_dim"] == [64]
    with pytest.raises(ValueError, match="unknown grid keys"):
        task_grid({"hiden_dim": [64]}, {"task_name": "t"})


def test_chosen_hparams_are_among_first_grid_points_of_seeded_shuffle(tmp_path):
    emb = scene_task(
        tmp_path / "blobs",
        prediction_type="multiclass",
        evaluation=["top1_acc"],
        sizes={"train": 120, "valid": 40, "test": 40},
    )
    grid = {
        **TINY_GRID,
        "hidden_layers": [1, 2],
        "lr": [1e-2, 3.2e-3, 1e-3],
        "initialization": ["xavier_uniform", "xavier_normal"],
        "max_epochs": [6],
    }
    result = probe_task(emb, grid=grid, max_grid_points=3, seed=5, device="cpu")
    full = list(ParameterGrid({**DEFAULT_GRID, **grid}))
    random.Random(5).shuffle(full)
    assert result["grid_points_tried"] == 3
    assert result["hparams"] in full[:3]
    assert result["hparams"] not in full[3:]


def test_events_from_frames_hand_made_example():
    times = np.arange(0.0, 500.0, 50.0)  # 10 frames
    a = [0.2, 0.8, 0.9, 0.7, 0.1, 0.6, 0.1, 0.1, 0.9, 0.9]
    b = [0.9] * 10
    probs = np.array([a, b], dtype=np.float32).T
    shuffled = np.random.default_rng(0).permutation(10)  # frame order must not matter
    # No filter: runs of a are frames 1-3, 5, 8-9; b covers everything.
    assert events_from_frames(probs[shuffled], times[shuffled], ["a", "b"], median_filter_ms=0, min_duration=0) == [
        {"label": "b", "start": 0.0, "end": 450.0},
        {"label": "a", "start": 50.0, "end": 150.0},
        {"label": "a", "start": 250.0, "end": 250.0},
        {"label": "a", "start": 400.0, "end": 450.0},
    ]
    # 150 ms / 50 ms hop = 3-frame median (edges reflected): a -> [.2 .8 .8 .7 .6 .1 .1 .1 .9 .9]
    # runs 1-4 (150 ms long) and 8-9 (50 ms, shorter than min_duration).
    assert events_from_frames(probs, times, ["a", "b"], median_filter_ms=150, min_duration=100) == [
        {"label": "b", "start": 0.0, "end": 450.0},
        {"label": "a", "start": 50.0, "end": 200.0},
    ]
    # The threshold is strict: 0.5 is inactive.
    half = np.full((10, 1), 0.5, dtype=np.float32)
    assert events_from_frames(half, times, ["a"], median_filter_ms=0, min_duration=0) == []


HEAREVAL_PYTHON = Path(__file__).resolve().parents[1] / ".venv-heareval" / "bin" / "python"
_HEAREVAL_EVENTS = """
import json, sys, torch
from heareval.predictions.task_predictions import create_events_from_prediction
case = json.load(sys.stdin)
out = []
for median_filter_ms, min_duration in case["posts"]:
    events = create_events_from_prediction(
        {float(t): torch.tensor(p) for t, p in zip(case["times"], case["probs"])},
        {0: "a", 1: "b", 2: "c"}, median_filter_ms=median_filter_ms, min_duration=min_duration)
    out.append([{**e, "start": float(e["start"]), "end": float(e["end"])} for e in events])
print(json.dumps(out))
"""


@pytest.mark.skipif(not HEAREVAL_PYTHON.is_file(), reason="no .venv-heareval: run ./bootstrap.sh --heareval")
def test_events_from_frames_matches_heareval():
    """heareval's create_events_from_prediction, run in its own venv, on random frames."""
    import json
    import os
    import subprocess

    rng = np.random.default_rng(1)
    times = np.arange(60) * 40.0
    probs = rng.random((60, 3)).astype(np.float32)
    posts = [(0, 0), (120, 80), (250, 125)]
    case = {"times": times.tolist(), "probs": probs.tolist(), "posts": posts}
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run(
        [str(HEAREVAL_PYTHON), "-c", _HEAREVAL_EVENTS],
        input=json.dumps(case),
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    expected = json.loads(proc.stdout)
    for (median_filter_ms, min_duration), theirs in zip(posts, expected, strict=True):
        got = events_from_frames(
            probs, times, ["a", "b", "c"], median_filter_ms=median_filter_ms, min_duration=min_duration
        )
        assert got == theirs, (median_filter_ms, min_duration)


@pytest.mark.parametrize(
    "shape",
    [
        {"hidden_layers": 2, "hidden_norm": "batchnorm", "norm_after_activation": False},
        {"hidden_layers": 1, "hidden_norm": "layernorm", "norm_after_activation": True},
        {"hidden_layers": 0, "hidden_norm": "batchnorm", "norm_after_activation": False},
    ],
)
@pytest.mark.parametrize("optim", ["adam", "sgd"])
def test_stacked_members_train_as_independent_heareval_models(shape, optim):
    """A stack of grid points = the same points as separate torch modules and optimizers."""
    confs = [
        {
            **{k: v[0] for k, v in DEFAULT_GRID.items()},
            **shape,
            "hidden_dim": 12,
            "dropout": 0.0,
            "optim": optim,
            "lr": lr,
            "initialization": init,
        }
        for lr, init in [(1e-2, "xavier_uniform"), (1e-3, "xavier_normal"), (3e-2, "xavier_uniform")]
    ]
    seeds = member_seeds(0, len(confs))
    stack = StackedMLP.build(6, 4, confs, torch.device("cpu"), seeds)
    singles = []
    for conf, (init, _) in zip(confs, seeds, strict=True):
        torch.manual_seed(init)  # as StackedMLP.build initialises each member
        singles.append(FullyConnectedPrediction(6, 4, conf))
    optimizer = StackedOptimizer(stack, [c["lr"] for c in confs], optim)
    optims = [
        (torch.optim.Adam if optim == "adam" else torch.optim.SGD)(m.parameters(), lr=c["lr"])
        for m, c in zip(singles, confs, strict=True)
    ]
    rng = np.random.default_rng(0)
    for _ in range(5):
        x = torch.from_numpy(rng.normal(size=(16, 6)).astype(np.float32))
        y = torch.from_numpy(rng.integers(0, 4, 16))
        loss = torch.nn.functional.cross_entropy(stack.forward(x).transpose(1, 2), y[None].expand(3, 16))
        (loss * 3).backward()  # the sum of the members' mean losses
        optimizer.step()
        for model, opt in zip(singles, optims, strict=True):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
    # Training-mode outputs (BatchNorm on batch statistics): a bias just before BatchNorm
    # has a zero gradient up to rounding, which Adam's normalisation turns into arbitrary
    # steps, so running statistics (evaluation mode) only agree without BatchNorm.
    x = torch.from_numpy(rng.normal(size=(10, 6)).astype(np.float32))
    expected = torch.stack([m(x) for m in singles]).detach()
    torch.testing.assert_close(stack.forward(x).detach(), expected, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(stack.select([2, 0]).forward(x).detach(), expected[[2, 0]], rtol=1e-4, atol=1e-5)
    if shape["hidden_norm"] != "batchnorm" or shape["hidden_layers"] == 0:
        for m in singles:
            m.eval()
        expected = torch.stack([m(x) for m in singles]).detach()
        torch.testing.assert_close(stack.logits(x), expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("norm", ["batchnorm", "layernorm"])
def test_a_member_trains_the_same_in_any_stack(norm):
    """With member seeds, a member's dropout masks and updates do not depend on who shares
    its stack (CUDA's stacks): a stack of three trains each member as a stack of one would."""
    confs = [
        {
            **{k: v[0] for k, v in DEFAULT_GRID.items()},
            "hidden_layers": 2,
            "hidden_dim": 24,
            "hidden_norm": norm,
            "dropout": 0.3,
            "lr": lr,
            "initialization": init,
        }
        for lr, init in [(1e-2, "xavier_uniform"), (1e-3, "xavier_normal"), (3e-2, "xavier_uniform")]
    ]
    seeds = member_seeds(5, len(confs))
    models = [StackedMLP.build(6, 4, confs, "cpu", seeds)]
    models += [StackedMLP.build(6, 4, [c], "cpu", [s]) for c, s in zip(confs, seeds, strict=True)]
    lrs = [[c["lr"] for c in confs]] + [[c["lr"]] for c in confs]
    optimizers = [StackedOptimizer(m, lr, "adam") for m, lr in zip(models, lrs, strict=True)]
    rng = np.random.default_rng(0)
    for _ in range(6):
        x = torch.from_numpy(rng.normal(size=(32, 6)).astype(np.float32))
        y = torch.from_numpy(rng.integers(0, 4, 32))
        for model, optimizer in zip(models, optimizers, strict=True):
            logits = model.forward(x)
            loss = torch.nn.functional.cross_entropy(
                logits.transpose(1, 2), y[None].expand(model.size, 32), reduction="none"
            )
            loss.mean(dim=1).sum().backward()  # each member's mean loss, as the engine
            optimizer.step()
    x = torch.from_numpy(rng.normal(size=(10, 6)).astype(np.float32))
    torch.manual_seed(1)
    stacked = models[0].forward(x).detach()  # training mode: dropout masks drawn again
    alone = torch.cat([m.forward(x).detach() for m in models[1:]])
    torch.testing.assert_close(stacked, alone, rtol=1e-5, atol=1e-6)
    if norm == "layernorm":  # running statistics: see the test above on BatchNorm's biases
        torch.testing.assert_close(
            models[0].logits(x), torch.cat([m.logits(x) for m in models[1:]]), rtol=1e-5, atol=1e-6
        )
    assert models[0].select([2]).generators[0] is models[0].generators[2]
    with pytest.raises(ValueError, match="member seeds"):
        StackedMLP.build(6, 4, confs, "cpu")


def test_onednn_linear_equals_matmul_forward_and_backward():
    """Seeded single members on the CPU multiply through oneDNN (OneDNNLinear): the products
    and gradients of torch.matmul, up to float rounding."""
    from hearflow.probe import kernels

    assert torch.backends.mkldnn.is_available() and kernels.onednn_linear() is not None  # the fast path is live
    gen = torch.Generator().manual_seed(0)
    for rows, dims, out in [(37, 5, 3), (300, 64, 256), (1024, 256, 3), (590, 256, 256)]:
        for input_grad in (True, False):
            x = torch.randn(rows, dims, generator=gen)
            w = torch.randn(dims, out, generator=gen) / dims**0.5
            b = torch.randn(out, generator=gen)
            grad = torch.randn(rows, out, generator=gen)
            leaves = [
                [t.clone().requires_grad_(k > 0 or input_grad) for k, t in enumerate((x, w, b))] for _ in range(2)
            ]
            fast = kernels.OneDNNLinear.apply(*leaves[0])
            reference = torch.matmul(leaves[1][0], leaves[1][1]) + leaves[1][2]
            fast.backward(grad)
            reference.backward(grad)
            torch.testing.assert_close(fast, reference, rtol=1e-5, atol=1e-4)
            for a, r in zip(leaves[0], leaves[1], strict=True):
                if input_grad or a is not leaves[0][0]:
                    torch.testing.assert_close(a.grad, r.grad, rtol=1e-5, atol=1e-3)
                else:
                    assert a.grad is None and r.grad is None


def test_seeded_cpu_members_multiply_through_onednn_and_a_one_point_grid_does_not(tmp_path, monkeypatch):
    """A one-point grid keeps torch.matmul, the kernels of heareval's nn.Linear (its exact
    equality with heareval: tests/test_probe_engines.py); several points use oneDNN."""
    from hearflow.probe import kernels

    calls = []
    op = kernels.onednn_linear()
    monkeypatch.setattr(kernels, "onednn_linear", lambda: lambda *args: calls.append(args[0].shape) or op(*args))
    emb = event_task(tmp_path / "events")
    probe_task(emb, grid=TINY_GRID, max_grid_points=1, device="cpu", workers=1)
    assert calls == []
    probe_task(emb, grid={**TINY_GRID, "lr": [1e-2, 1e-3]}, max_grid_points=2, device="cpu", workers=1)
    assert len(calls) > 0


@pytest.mark.parametrize("p", [0.0, 0.1, 0.25, 0.5, 1 / 3, 0.9])
def test_bernoulli_keep_drops_each_entry_with_probability_p(p):
    generator = torch.Generator().manual_seed(3)
    keep = bernoulli_keep((64, 1000, 100), p, generator)
    assert keep.dtype == torch.bool and keep.shape == (64, 1000, 100)
    n = keep.numel()
    dropped = n - int(keep.sum())
    assert abs(dropped / n - p) <= 5 * np.sqrt(p * (1 - p) / n) + 1e-12  # 5 standard errors
    # Independent of position: every row and column keeps about 1 - p of its entries.
    rows = 1 - keep.float().mean(dim=(0, 2))
    assert float(rows.std()) < 5 * np.sqrt(p * (1 - p) / (64 * 100)) + 1e-12
    again = bernoulli_keep((64, 1000, 100), p, torch.Generator().manual_seed(3))
    assert torch.equal(keep, again)
    with pytest.raises(ValueError, match="dropout"):
        bernoulli_keep((3,), 1.0)


def test_result_does_not_depend_on_the_worker_count(tmp_path, monkeypatch):
    """Grid points and re-trainings in forked workers: the same result as in one process,
    on a k-fold task (re-trainings) and an event task, with dropout."""
    from hearflow.probe import native, schedule

    monkeypatch.setattr(schedule, "FORK_MIN_FLOPS", 0.0)  # fork however small the grid
    pids = tmp_path / "pids"
    fit = native._Trainer.fit

    def logged_fit(self, *job):
        with pids.open("a") as f:
            f.write(f"{os.getpid()}\n")
        if os.getpid() == parent and self.workers > 1:
            time.sleep(0.3)  # leave jobs to the forks, which start some 30 ms later
        return fit(self, *job)

    parent = os.getpid()

    monkeypatch.setattr(native._Trainer, "fit", logged_fit)
    kfold = kfold_blobs(tmp_path / "kfold", 60)
    events = event_task(tmp_path / "events")
    grid = {**TINY_GRID, "hidden_layers": [1, 2], "lr": [1e-2, 1e-3], "dropout": [0.2], "max_epochs": [9]}
    for emb in (kfold, events):
        alone = probe_task(emb, grid=grid, max_grid_points=4, device="cpu", workers=1)
        assert set(pids.read_text().split()) == {str(os.getpid())}
        pids.unlink()
        forked = probe_task(emb, grid=grid, max_grid_points=4, device="cpu", workers=3)
        seen = set(pids.read_text().split())  # this process, two forks for the grid (and one
        assert str(os.getpid()) in seen and len(seen) >= 3  # for the k-fold re-trainings)
        pids.unlink()
        assert forked == alone
        assert alone["grid_points_tried"] == 4


def test_a_fork_takes_further_jobs_while_this_process_trains(tmp_path, monkeypatch):
    """A run is larger than a pipe's buffer (a 256 x 256 layer is 256 KiB): this process
    reads the forks' runs while it trains, so a fork that has sent a run takes the next job
    instead of waiting in send() until this process is done."""
    from hearflow.probe import native, schedule

    monkeypatch.setattr(schedule, "FORK_MIN_FLOPS", 0.0)
    done = tmp_path / "done"
    fit = native._Trainer.fit
    parent = os.getpid()
    grid = {
        **TINY_GRID,
        "hidden_layers": [2],
        "hidden_dim": [256],
        "lr": [1e-2, 3e-3, 1e-3, 3e-4],
        "max_epochs": [3],
        "check_val_every_n_epoch": [3],
    }

    def fit_waiting_for_the_fork(self, *job):
        if os.getpid() == parent:  # this process's one job: until the fork has done the other three
            deadline = time.time() + 120
            while not done.exists() or len(done.read_text().split()) < 3:
                assert time.time() < deadline, "the fork stopped taking jobs"
                time.sleep(0.05)
        runs = fit(self, *job)
        if os.getpid() != parent:
            with done.open("a") as f:
                f.write(f"{os.getpid()}\n")
        return runs

    monkeypatch.setattr(native._Trainer, "fit", fit_waiting_for_the_fork)
    result = probe_task(event_task(tmp_path / "events"), grid=grid, max_grid_points=4, device="cpu", workers=2)
    assert len(done.read_text().split()) == 3 and result["grid_points_tried"] == 4


def test_a_failing_worker_fails_the_probe(tmp_path, monkeypatch):
    from hearflow.probe import native, schedule

    monkeypatch.setattr(schedule, "FORK_MIN_FLOPS", 0.0)
    fit = native._Trainer.fit

    def fit_failing_in_forks(self, *job):
        if os.getpid() != parent:
            raise FloatingPointError("boom in a worker")
        time.sleep(0.3)  # leave a job to the fork
        return fit(self, *job)

    parent = os.getpid()
    monkeypatch.setattr(native._Trainer, "fit", fit_failing_in_forks)
    grid = {**TINY_GRID, "lr": [1e-2, 1e-3, 3e-3], "max_epochs": [6]}
    with pytest.raises(RuntimeError, match="(?s)a probe worker failed.*boom in a worker"):
        probe_task(event_task(tmp_path / "events"), grid=grid, max_grid_points=3, device="cpu", workers=2)


@pytest.mark.skipif(sys.platform != "linux", reason="glibc's mallopt")
def test_freed_memory_is_kept_for_reuse_under_glibc():
    import platform

    assert keep_freed_memory() is (platform.libc_ver()[0] == "glibc")


# --- probe seeds and clip resamples (issue 22) ------------------------------------------------


def test_extra_seeds_retrain_the_chosen_point_and_leave_the_first_seed_alone(tmp_path):
    """probe.seeds [7, 8, 9]: the first seed's run is the one-seed run (same folds, choice and
    scores); seeds 8 and 9 retrain the chosen point on every fold with their own member seeds;
    `metrics` is the mean over seeds; each seed's resampled scores recompute heareval's score
    on the resampled test rows (hand-checked for one resample), the same resamples for any
    configuration of the task."""
    emb = kfold_blobs(tmp_path / "folds", 40)
    grid = {**TINY_GRID, "dropout": [0.5], "lr": [1e-2, 1e-3]}
    one = probe_task(emb, grid=grid, seed=7, device="cpu", max_grid_points=2)
    three = probe_task(emb, grid=grid, seed=7, seeds=[7, 8, 9], bootstrap=30, device="cpu", max_grid_points=2)
    assert three["folds"] == one["folds"] and three["hparams"] == one["hparams"]
    assert [s["seed"] for s in three["per_seed"]] == [7, 8, 9]
    assert three["per_seed"][0]["metrics"] == one["metrics"]
    values = [s["metrics"]["top1_acc"] for s in three["per_seed"]]
    assert three["metrics"]["top1_acc"] == pytest.approx(np.mean(values))
    assert len({json.dumps(s["replicates"]) for s in three["per_seed"]}) == 3  # seeds train differently
    again = probe_task(emb, grid=grid, seed=7, seeds=[7, 8, 9], bootstrap=30, device="cpu", max_grid_points=2)
    assert again == three  # seeded
    reps = three["per_seed"][0]["replicates"]["top1_acc"]
    assert len(reps) == 30 and all(0 <= r <= 1 for r in reps)
    with pytest.raises(ValueError, match="first is the run's seed"):
        probe_task(emb, grid=grid, seed=7, seeds=[8, 9], device="cpu")


def test_resampled_scores_are_heareval_scores_on_the_resampled_clips(tmp_path):
    """Objective.replicates on a scene task: each value is heareval's score function on the rows
    of one resample (an outside reference: heareval.score's own classes)."""
    from heareval.score import available_scores

    from hearflow.probe.objective import prepare
    from hearflow.probe.resamples import clip_resamples

    emb = scene_task(
        tmp_path / "blobs",
        prediction_type="multilabel",
        evaluation=["mAP", "d_prime"],
        sizes={"train": 10, "valid": 10, "test": 40},
    )
    probe, data = prepare(emb, seed=0, device="cpu")
    test = data.build(["test"], evaluate=True)
    probs = np.random.default_rng(0).random((40, 5)).astype(np.float32)
    resamples = clip_resamples(40, 5, "blobs/test")
    reps = probe.replicates(probs, test, None, resamples)
    y = test.y.numpy()
    score = available_scores["mAP"](label_to_idx={f"c{i}": i for i in range(5)})
    assert reps["mAP"][3] == pytest.approx(score(probs[resamples[3]], y[resamples[3]]))
    assert set(reps) == {"mAP", "d_prime"} and len(reps["d_prime"]) == 5


def test_other_engines_repeat_their_whole_run_per_seed(tmp_path):
    """probe_dirs with the linear engine and seeds (1, 2): one full run per seed, each the run
    that seed gives alone; metrics are their mean, per_seed lists both (no clip resamples)."""
    from hearflow.probe import ProbeSettings, probe_dirs

    emb = kfold_blobs(tmp_path / "folds", 20)
    linear = {"epochs": 3}
    alone = [probe_dirs("linear", [emb], ProbeSettings(seed=s, linear=linear))[0] for s in (1, 2)]
    (both,) = probe_dirs("linear", [emb], ProbeSettings(seed=1, seeds=(1, 2), linear=linear))
    assert [s["seed"] for s in both["per_seed"]] == [1, 2]
    assert [s["metrics"] for s in both["per_seed"]] == [a["metrics"] for a in alone]
    assert both["metrics"]["top1_acc"] == pytest.approx(np.mean([a["metrics"]["top1_acc"] for a in alone]))
    assert "replicates" not in both["per_seed"][0]
    with pytest.raises(ValueError, match="first must be the run's seed"):
        probe_dirs("linear", [emb], ProbeSettings(seed=1, seeds=(2, 3), linear=linear))
