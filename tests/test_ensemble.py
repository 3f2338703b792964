"""Ensembles derived from cached member embeddings equal the GURA recipe run directly."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from itertools import groupby

import numpy as np
import pytest
import torch

from hearflow import hear
from hearflow.embed import embed_task
from hearflow.ensemble import build_config, combine_members, interleave_members, interpolate_linear
from tests.conftest import ROOT, make_task

DIM = 48


def test_interpolation_matches_torch_linear():
    rng = np.random.default_rng(0)
    for n, size in ((32, 48), (2048, 1024), (1280, 1024), (21, 49), (37, 11)):
        x = rng.standard_normal((3, n)).astype(np.float32)
        ref = torch.nn.functional.interpolate(torch.from_numpy(x)[None], size=size, mode="linear")[0]
        np.testing.assert_allclose(interpolate_linear(x, size), ref.numpy(), atol=1e-6, rtol=0)


def test_cat_interleaves_member_features_in_order():
    members = [np.full((2, 5), m, np.float32) + np.arange(5, dtype=np.float32) / 10 for m in range(3)]
    cat = interleave_members(members)
    assert cat.shape == (2, 15)
    for k in range(5):
        for m in range(3):
            assert cat[0, 3 * k + m] == pytest.approx(m + k / 10)  # element 3k+m from member m


def test_avg_is_the_mean_of_aligned_members():
    a, b = np.ones((4, 8), np.float32), 3 * np.ones((4, 16), np.float32)
    np.testing.assert_allclose(combine_members([a, b], "avg", 12), 2 * np.ones((4, 12)))


@pytest.fixture(scope="module")
def event_members(tmp_path_factory, standins):
    """Member embeddings (hubert, wav2vec2, crepe) of a tiny event task, as the pipeline caches them."""
    root = tmp_path_factory.mktemp("ens")
    task = make_task(root / "tasks", embedding_type="event", durations={"train": [1.0, 1.3], "valid": [0.9], "test": [1.1]})
    specs = {
        "hubert": ("ssl", {"checkpoint": str(standins["hubert"])}),
        "wav2vec2": ("ssl", {"checkpoint": str(standins["wav2vec2"])}),
        "crepe": ("crepe", {"capacity": "tiny"}),
    }
    dirs = {
        name: embed_task(task.root, root / "members" / name, module=mod, options=opts, device="cpu", progress=False)
        for name, (mod, opts) in specs.items()
    }
    return task, dirs, root


def _direct_gura(task, standins, combine):
    """The original recipe, step by step, straight from the models (one clip at a time)."""
    from hearflow.audio import read_clip
    from hearflow.models import crepe, ssl

    hub = ssl.load_model(checkpoint=str(standins["hubert"]), layer="fusion", device="cpu")
    w2v = ssl.load_model(checkpoint=str(standins["wav2vec2"]), layer="last", device="cpu")
    crp = crepe.load_model(capacity="tiny", device="cpu")
    out = {}
    for split in task.splits:
        for name in sorted(task.labels(split)):
            audio = torch.from_numpy(read_clip(task.audio_dir(16000, split) / name, 16000))[None]
            h, ts = ssl.get_timestamp_embeddings(audio, hub)
            w, _ = ssl.get_timestamp_embeddings(audio, w2v)
            c, _ = crepe.get_timestamp_embeddings(audio, crp)
            lin = torch.nn.functional.interpolate
            h, w, c = (lin(x, size=DIM, mode="linear") for x in (h, w, c))  # feature axis -> DIM
            c = lin(c.transpose(1, 2), size=h.shape[1], mode="linear").transpose(1, 2)  # time -> w2v frames
            emb = torch.stack([h, w, c], dim=-1).flatten(-2) if combine == "cat" else (h + w + c) / 3
            out[split, name] = (emb[0].numpy(), ts[0].numpy())
    return out


@pytest.mark.parametrize("combine", ["cat", "avg"])
def test_derived_timestamp_embeddings_equal_the_direct_recipe(event_members, standins, combine):
    task, dirs, root = event_members
    views = [dirs["hubert"] / "fusion", dirs["wav2vec2"] / "last", dirs["crepe"] / "last"]
    out = build_config(views, root / f"cfg_{combine}", combine=combine, dim=DIM)
    expected = _direct_gura(task, standins, combine)
    for split in task.splits:
        emb = hear.read_embeddings(out, split)
        rows = hear.read_filename_timestamps(out, split)
        start = 0
        for name, group in groupby(rows, key=lambda r: r[0]):
            ts = np.array([t for _, t in group])
            ref_emb, ref_ts = expected[split, name]
            np.testing.assert_allclose(ts, ref_ts)
            np.testing.assert_allclose(emb[start : start + len(ts)], ref_emb, atol=1e-5, rtol=0)
            start += len(ts)
        assert start == emb.shape[0]
    assert emb.shape[1] == (3 * DIM if combine == "cat" else DIM)


def test_single_config_copies_its_member(event_members):
    task, dirs, root = event_members
    out = build_config([dirs["crepe"] / "last"], root / "cfg_single", combine="single", dim=None)
    for split in task.splits:
        np.testing.assert_array_equal(hear.read_embeddings(out, split), hear.read_embeddings(dirs["crepe"] / "last", split))


def test_ensemble_phase_runs_no_model_code(event_members, tmp_path):
    """Build a config with torch, transformers, torchcrepe and hearflow.models unimportable."""
    task, dirs, root = event_members
    code = textwrap.dedent(
        f"""
        import sys
        for name in ("torch", "transformers", "torchcrepe", "hearflow.models"):
            sys.modules[name] = None  # any import of them now raises ImportError
        from pathlib import Path
        from hearflow.ensemble import build_config
        build_config([Path({str(dirs['hubert'] / 'fusion')!r}), Path({str(dirs['crepe'] / 'last')!r})],
                     Path({str(tmp_path / 'cfg')!r}), combine="cat", dim=16)
        print("ok")
        """
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                         env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"})
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "cfg" / "train.embeddings.npy").is_file()


def test_user_config_of_three_layers_of_one_model(tmp_path, standins):
    """Arbitrary member choices need no code: here hidden states 1, 2, 3 of one model, cat."""
    task = make_task(tmp_path / "tasks")
    member = embed_task(task.root, tmp_path / "m", module="ssl", options={"checkpoint": str(standins["hubert"])},
                        device="cpu", progress=False)
    views = [member / "layers" / f"{i:02d}" for i in (1, 2, 3)]
    out = build_config(views, tmp_path / "cfg", combine="cat", dim=32)
    per_layer = [hear.read_embeddings(v, "test") for v in views]
    np.testing.assert_allclose(hear.read_embeddings(out, "test"), interleave_members(per_layer), atol=1e-6)
    with pytest.raises(FileNotFoundError, match="layer-index views"):
        build_config([member / "layers" / "09"], tmp_path / "bad", combine="single", dim=None)
