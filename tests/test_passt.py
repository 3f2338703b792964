"""PaSST: weights from a URL into torch's hub cache, and hear21passt's own HEAR outputs."""

from __future__ import annotations

import functools
import http.server
import threading

import pytest
import torch

from hearflow.embed.models import passt
from tests.conftest import PASST_TINY
from tests.test_models import _audio

SR = 32000


class _Counting(http.server.SimpleHTTPRequestHandler):
    requests: list[str] = []

    def do_GET(self):  # noqa: N802 (http.server's naming)
        _Counting.requests.append(self.path)
        super().do_GET()

    def log_message(self, *args):
        pass


@pytest.fixture()
def weights_url(passt_weights):
    handler = functools.partial(_Counting, directory=str(passt_weights.parent))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Counting.requests = []
    yield f"http://127.0.0.1:{server.server_address[1]}/{passt_weights.name}"
    server.shutdown()
    server.server_close()


def test_weights_come_from_the_url_once_then_from_the_hub_cache(weights_url, passt_weights, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    model = passt.load_model(weights=weights_url, arch=PASST_TINY, device="cpu")
    cached = tmp_path / "torch" / "hub" / "checkpoints" / passt_weights.name
    assert cached.read_bytes() == passt_weights.read_bytes() and len(_Counting.requests) == 1
    again = passt.load_model(weights=weights_url, arch=PASST_TINY, device="cpu")  # no second download
    assert len(_Counting.requests) == 1
    assert model.checkpoint == weights_url and model.scene_embedding_size == 527 + 64
    ref = torch.load(passt_weights, weights_only=True)
    for name, value in again.wrapper.net.state_dict().items():
        torch.testing.assert_close(value, ref[name], atol=0, rtol=0)


def test_missing_weights_error_names_the_url_and_the_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    url = "http://127.0.0.1:9/passt-s-f128-p16-s10-ap.476-swa.pt"  # port 9: nothing listens
    with pytest.raises(passt.MissingWeightsError) as err:
        passt.load_model(weights=url, device="cpu")
    text = str(err.value)
    assert url in text and "hub" in text and "options.weights" in text
    with pytest.raises(passt.MissingWeightsError, match="does not exist"):
        passt.load_model(weights=str(tmp_path / "nowhere.pt"), device="cpu")


@pytest.fixture(scope="module")
def model(passt_weights):
    return passt.load_model(weights=str(passt_weights), arch=PASST_TINY, device="cpu", window_batch=16)


def test_timestamp_embeddings_equal_hear21passt(model):
    from hear21passt.base import get_timestamp_embeddings

    audio = _audio(2, 1.2, sr=SR)
    emb, ts = passt.get_timestamp_embeddings(audio, model)
    ref, ref_ts = get_timestamp_embeddings(audio, model.wrapper)
    assert emb.shape == ref.shape and emb.shape[-1] == 527 + 64
    torch.testing.assert_close(emb, ref, atol=1e-4, rtol=0)
    torch.testing.assert_close(ts, ref_ts.float())
    assert torch.allclose(torch.diff(ts[0]), torch.tensor(50.0))


def test_scene_embeddings_equal_hear21passt_short_and_long(passt_weights):
    from hear21passt.base import get_scene_embeddings

    # a 1 s model window makes a 2.6 s clip "long": 1 s windows every 250 ms, averaged
    small = passt.load_model(
        weights=str(passt_weights), arch=PASST_TINY, device="cpu", scene_window_ms=1000, scene_hop_ms=250
    )
    for seconds in (0.8, 2.6):
        audio = _audio(2, seconds, seed=4, sr=SR)
        ours = passt.get_scene_embeddings(audio, small)
        ref = get_scene_embeddings(audio, small.wrapper)
        assert ours.shape == (2, 527 + 64)
        torch.testing.assert_close(ours, ref, atol=1e-4, rtol=0)
    assert small.n_frames(int(0.8 * SR), scene=True) == 1
    assert small.n_frames(int(2.6 * SR), scene=True) == int(2.6 * SR) // (SR // 4) + 1


def test_mode_and_hop_options_are_checked(passt_weights):
    with pytest.raises(ValueError, match="mode"):
        passt.load_model(weights=str(passt_weights), mode="everything")
    with pytest.raises(ValueError, match="50 ms"):
        passt.load_model(weights=str(passt_weights), timestamp_hop_ms=80)
    features = passt.load_model(weights=str(passt_weights), arch=PASST_TINY, mode="embed_only", device="cpu")
    emb, _ = passt.get_timestamp_embeddings(_audio(1, 0.5, sr=SR), features)
    assert emb.shape[-1] == features.timestamp_embedding_size == 64


def test_the_hear2021_architecture_is_passt_s_with_1295_d_embeddings():
    """The default network (HEAR 2021's PaSST-S SWA): ViT-B sizes, 527 logits + 768 features."""
    wrapper = passt.build_network()
    assert wrapper.net.embed_dim == 768 and len(wrapper.net.blocks) == 12
    assert wrapper.scene_embedding_size == wrapper.timestamp_embedding_size == 1295
    assert wrapper.sample_rate == SR and wrapper.timestamp_hop == 1600 and wrapper.timestamp_window == 5120
