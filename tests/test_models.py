"""HEAR-API properties of every model module of the registry, on the small offline instances
each declares (`SPEC.examples`: bundled CREPE weights, tiny stand-ins), and module-specific checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hearflow.embed.models import EmbeddingModel, ModelModule, check_model, crepe, import_module, logmel, registry, ssl
from hearflow.embed.models.common import select_layer

SR = 16000
EXAMPLES = [(name, example) for name, entry in registry().items() for example in entry.spec.examples]


def _audio(n: int, seconds: float, seed: int = 0, sr: int = SR) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(int(seconds * sr)) / sr
    f0 = 110 * 2 ** (torch.rand(n, 1, generator=g) * 3)
    return (0.4 * torch.sin(2 * torch.pi * f0 * t) + 0.05 * torch.randn(n, t.numel(), generator=g)).float()


@pytest.fixture(scope="module", params=EXAMPLES, ids=[f"{m}-{e}" for m, e in EXAMPLES])
def loaded(request, tmp_path_factory):
    """(module, model) for every example instance of every registered model module."""
    name, example = request.param
    mod = import_module(name)
    options = mod.example(example, tmp_path_factory.mktemp(f"{name}-{example}"))
    return mod, check_model(mod.load_model(**options), name)


def test_every_model_module_keeps_the_contract(loaded):
    """The module and its model have every member of the declared protocols (what the
    embedding job uses without defaults); the SPEC's facts hold for the loaded model."""
    mod, model = loaded
    assert isinstance(mod, ModelModule) and isinstance(model, EmbeddingModel)
    assert model.sample_rate == mod.SPEC.sample_rate
    assert mod.SPEC.per_layer == (model.num_hidden_states > 1)
    assert model.min_samples >= 1 and isinstance(model.pads_exactly, bool)


def test_registry_lists_the_model_files_that_declare_a_spec():
    """Each src/hearflow/embed/models/*.py with a module-level `SPEC = ModelSpec(...)`, read without
    importing it; shared code (common, standin) is no model module."""
    assert set(registry()) == {"crepe", "logmel", "passt", "ssl"}
    assert registry()["ssl"].spec.per_layer and registry()["logmel"].spec.sample_rate == 32000


def test_timestamp_embeddings_shapes_dtype_finite(loaded):
    mod, model = loaded
    audio = _audio(3, 1.3, sr=model.sample_rate)
    emb, ts = mod.get_timestamp_embeddings(audio, model)
    assert emb.dtype == torch.float32 and ts.shape == emb.shape[:2]
    assert emb.shape[0] == 3 and emb.shape[2] == model.timestamp_embedding_size
    assert torch.isfinite(emb).all()
    scene = mod.get_scene_embeddings(audio, model)
    assert scene.shape == (3, model.scene_embedding_size) and scene.dtype == torch.float32
    assert torch.isfinite(scene).all()


def test_timestamps_centred_evenly_spaced_inside_the_clip(loaded):
    mod, model = loaded
    seconds = 1.3
    _, ts = mod.get_timestamp_embeddings(_audio(2, seconds, sr=model.sample_rate), model)
    hops = torch.diff(ts, dim=1)
    assert torch.allclose(hops, hops[0, 0]) and 0 < hops[0, 0] <= 50
    assert torch.equal(ts[0], ts[1])
    assert ts[0, 0] >= 0 and ts[0, -1] <= seconds * 1000
    if mod is ssl:  # frame k covers [20k, 20k + 25] ms: centred at 12.5 + 20k
        assert torch.allclose(ts[0, :3], torch.tensor([12.5, 32.5, 52.5]))
        assert ts.shape[1] == (int(seconds * SR) - 400) // 320 + 1


def test_deterministic(loaded):
    mod, model = loaded
    audio = _audio(2, 0.8, sr=model.sample_rate)
    a, _ = mod.get_timestamp_embeddings(audio, model)
    b, _ = mod.get_timestamp_embeddings(audio.clone(), model)
    assert torch.equal(a, b)


def test_batch_equals_one_by_one(loaded):
    mod, model = loaded
    audio = _audio(3, 0.9, seed=3, sr=model.sample_rate)
    batch, _ = mod.get_timestamp_embeddings(audio, model)
    single = torch.cat([mod.get_timestamp_embeddings(audio[i : i + 1], model)[0] for i in range(3)])
    torch.testing.assert_close(batch, single, atol=1e-4, rtol=0)


def test_crepe_equals_torchcrepe_embed_fifth_maxpool():
    import torchcrepe

    audio = _audio(1, 1.0)
    for capacity, size in (("tiny", 256), ("full", 2048)):
        model = crepe.load_model(capacity=capacity, device="cpu")
        emb, _ = crepe.get_timestamp_embeddings(audio, model)
        ref = torchcrepe.embed(audio, SR, hop_length=800, model=capacity, device="cpu", pad=True)
        assert ref.shape[-2:].numel() == size == emb.shape[-1]
        torch.testing.assert_close(emb[0], ref[0].reshape(ref.shape[1], -1), atol=0, rtol=0)


def test_crepe_scene_uses_the_250ms_hop():
    model = crepe.load_model(capacity="tiny", device="cpu")
    hidden, ts = crepe.embed_layers(_audio(1, 2.0), model, scene=True)
    assert torch.allclose(torch.diff(ts[0]), torch.tensor(250.0))
    torch.testing.assert_close(crepe.get_scene_embeddings(_audio(1, 2.0), model), hidden[0].mean(1))


def _hooked_states(net, audio) -> tuple[list[torch.Tensor], torch.Tensor]:
    """The hidden states as the authors' transformers 4.11.3 listed them, captured with forward
    hooks on the encoder's own modules (not read from `hidden_states`): the input of the
    first layer, every layer's output, and the encoder's final LayerNorm output as the last
    term (4.11.3 modeling_wav2vec2.py Wav2Vec2EncoderStableLayerNorm.forward appends the
    state before each layer, then `layer_norm(hidden_states)` after the loop; the same in
    modeling_hubert.py). Also returns `last_hidden_state`."""
    encoder = net.encoder
    inputs, outputs, normed = [], [], []
    handles = [
        encoder.layers[0].register_forward_pre_hook(
            lambda m, args, kw: inputs.append(args[0].clone()), with_kwargs=True
        )
    ]
    handles += [
        layer.register_forward_hook(
            lambda m, a, out: outputs.append((out[0] if isinstance(out, tuple) else out).clone())
        )
        for layer in encoder.layers
    ]
    handles.append(encoder.layer_norm.register_forward_hook(lambda m, a, out: normed.append(out.clone())))
    try:
        with torch.no_grad():
            last = net(audio).last_hidden_state
    finally:
        for h in handles:
            h.remove()
    assert len(inputs) == 1 and len(outputs) == net.config.num_hidden_layers and len(normed) == 1
    return [inputs[0], *outputs[:-1], normed[0]], last


@pytest.mark.parametrize("arch", ["wav2vec2", "hubert"])
def test_layers_are_the_authors_4x_hidden_states_captured_by_hooks(standins, arch):
    """last = last_hidden_state (after the final LayerNorm of a stable-layer-norm encoder, which
    transformers 5 leaves out of hidden_states[-1]); fusion = mean of the 4.x list."""
    from transformers import AutoModel

    audio = _audio(2, 1.0)
    net = AutoModel.from_pretrained(standins[arch]).eval()
    assert net.config.do_stable_layer_norm  # as all three HEAR checkpoints
    states, last = _hooked_states(net, audio)
    torch.testing.assert_close(states[-1], last, atol=0, rtol=0)
    assert len(states) == net.config.num_hidden_layers + 1  # input embedding output included
    for layer, expected in (("last", last), ("fusion", torch.stack(states).mean(0)), (0, states[0]), (1, states[1])):
        model = ssl.load_model(checkpoint=str(standins[arch]), layer=layer, device="cpu")
        emb, _ = ssl.get_timestamp_embeddings(audio, model)
        torch.testing.assert_close(emb, expected, atol=1e-5, rtol=1e-5)
    scene = ssl.get_scene_embeddings(audio, ssl.load_model(checkpoint=str(standins[arch]), layer="last", device="cpu"))
    torch.testing.assert_close(scene, last.mean(1), atol=1e-5, rtol=1e-5)
    assert model.provenance["hidden_states_convention"].startswith("transformers 4.x list")
    assert model.provenance["checkpoint_revision"].startswith("sha256:")


def test_last_differs_from_transformers5_hidden_states_on_stable_layer_norm(standins):
    """Why the above matters: on a stable-layer-norm model, transformers 5's hidden_states[-1]
    is not last_hidden_state, so a "last" read from it is another feature than the paper's."""
    from transformers import AutoModel

    net = AutoModel.from_pretrained(standins["hubert"]).eval()
    with torch.no_grad():
        out = net(_audio(1, 1.0), output_hidden_states=True)
    assert (out.hidden_states[-1] - out.last_hidden_state).abs().max() > 0.1


def test_select_layer_rejects_unknown_choices():
    hidden = torch.zeros(3, 1, 2, 4)
    with pytest.raises(ValueError, match="out of range"):
        select_layer(hidden, 5)
    with pytest.raises(ValueError, match="layer must be"):
        select_layer(hidden, "middle")


def test_missing_checkpoint_error_says_how_to_provide_it(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ssl.MissingCheckpointError) as err:
        ssl.load_model(checkpoint="facebook/hubert-xlarge-ll60k", device="cpu")
    text = str(err.value)
    assert "facebook/hubert-xlarge-ll60k" in text and "HF_HUB_OFFLINE" in text and "local" in text


def test_short_clip_is_refused_with_its_length(standins):
    model = ssl.load_model(checkpoint=str(standins["wav2vec2"]), device="cpu")
    with pytest.raises(ValueError, match="shorter than the model's window"):
        ssl.get_timestamp_embeddings(torch.zeros(1, 300), model)
    assert np.isfinite(ssl.get_scene_embeddings(torch.zeros(1, 400), model).numpy()).all()


def test_logmel_equals_an_independent_librosa_computation():
    """librosa (its own STFT and mel filterbank: HTK mel scale, no filter normalisation, a
    periodic Hann window of 800 samples centred in 1024, reflect padding: torchaudio's
    MelSpectrogram defaults) gives the same log-mel frames."""
    import librosa

    model = logmel.load_model(sample_rate=32000, n_mels=64, hop_ms=10, device="cpu")
    audio = _audio(1, 0.5, sr=32000)
    emb, ts = logmel.get_timestamp_embeddings(audio, model)
    ref = librosa.feature.melspectrogram(
        y=audio[0].double().numpy(),
        sr=32000,
        n_fft=1024,
        hop_length=320,
        win_length=800,
        window="hann",
        center=True,
        pad_mode="reflect",
        power=2.0,
        n_mels=64,
        htk=True,
        norm=None,
    )
    np.testing.assert_allclose(emb[0].numpy(), np.log(ref + logmel.EPS).T, atol=2e-4, rtol=0)
    assert torch.allclose(torch.diff(ts[0]), torch.tensor(10.0)) and emb.shape[-1] == 64


def test_logmel_puts_a_tone_in_its_hand_computed_mel_bin():
    """A 1 kHz sine peaks in the mel band whose HTK centre, 2595 log10(1 + f / 700) spaced
    evenly from 0 to 16 kHz in n_mels + 2 points, lies closest to 1 kHz."""
    sr, n_mels, f0 = 32000, 64, 1000.0
    model = logmel.load_model(sample_rate=sr, n_mels=n_mels, hop_ms=10, device="cpu")
    t = torch.arange(sr // 2, dtype=torch.float64) / sr
    emb, _ = logmel.get_timestamp_embeddings((0.5 * torch.sin(2 * np.pi * f0 * t)).float()[None], model)
    mel = lambda f: 2595.0 * np.log10(1.0 + f / 700.0)  # noqa: E731
    centres = 700.0 * (10 ** (np.linspace(0, mel(sr / 2), n_mels + 2)[1:-1] / 2595.0) - 1.0)
    expected = int(np.argmin(np.abs(centres - f0)))
    assert int(emb[0, 10:-10].mean(0).argmax()) == expected


@pytest.mark.parametrize(
    "checkpoint",
    ["facebook/hubert-xlarge-ll60k", "facebook/hubert-large-ll60k", "facebook/wav2vec2-large-960h-lv60-self"],
)
def test_full_size_architectures_embed(checkpoint):
    """The real checkpoints' architectures (catalog/checkpoints.yaml, from their Hub configs),
    at full size with random weights, through hearflow.embed.models.ssl: 2 s of audio."""
    from transformers import AutoModel

    from hearflow.embed.models.standin import architecture_config, checkpoint_facts

    facts = checkpoint_facts(checkpoint)
    torch.manual_seed(0)
    net = AutoModel.from_config(architecture_config(checkpoint))
    model = ssl.SSLModel(net, checkpoint, "last", stand_in=True)
    assert (model.window, model.hop) == (400, 320)  # 25 ms receptive field, 20 ms frames
    audio = _audio(1, 2.0)
    hidden, ts = ssl.embed_layers(audio, model)
    n_frames = (32000 - 400) // 320 + 1  # 99
    assert tuple(hidden.shape) == (facts["hidden_states"], 1, n_frames, facts["hidden_size"])
    assert torch.isfinite(hidden).all()
    # the authors' timestamps: (ms - 5) // 20 frames centred at 12.5 + 20 k ms
    assert n_frames == (2000 - 5) // 20
    torch.testing.assert_close(ts[0], 12.5 + 20.0 * torch.arange(n_frames, dtype=torch.float32))
    emb, _ = ssl.get_timestamp_embeddings(audio, model)
    assert emb.shape == (1, n_frames, facts["hidden_size"]) == (1, n_frames, model.timestamp_embedding_size)
    del net, model, hidden
