"""PaSST as a HEAR-API module at 32 kHz, through `hear21passt` (optional extra: `.[passt]`).

    model = load_model()                                   # weights from the release URL
    emb, ts = get_timestamp_embeddings(audio, model)       # audio [n, samples] at 32 kHz

The network, its mel front end (128 mels, 25 ms window, 10 ms hop) and the embedding modes
come from `hear21passt`; "all" is 1295-d (527 AudioSet logits + 768 features). Windowing
follows hear21passt's HEAR module: timestamp embeddings from 160 ms windows every 50 ms
(reflect-padded, centred at k * hop); scene embeddings of clips up to 10 s from one pass over
the clip, longer clips from 10 s windows every 2.5 s, averaged. Here the windows of a batch
go through the network `window_batch` at a time, so memory is bounded by that, not by the
clip (hear21passt materialises every window of the clip first).

Weights: a URL (default: the AudioSet PaSST-S SWA release used in HEAR 2021) is downloaded
once into torch's hub cache (`$TORCH_HOME/hub/checkpoints/`), or a local file path is read.
PaSST exposes one embedding, so "last" and "fusion" are the same single state.
"""

from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path
from urllib.parse import urlparse

import torch

from hearflow.core.devices import default_device
from hearflow.embed.models import ModelSpec
from hearflow.embed.models.common import as_batch, collect, mean_over_time

SPEC = ModelSpec(sample_rate=32000, examples=("tiny",))
SAMPLE_RATE = SPEC.sample_rate
DEFAULT_WEIGHTS = (
    "https://github.com/kkoutini/PaSST/releases/download/v0.0.1-audioset/passt-s-f128-p16-s10-ap.476-swa.pt"
)
DEFAULT_ARCH = "passt_s_swa_p16_128_ap476"
MODES = ("all", "embed_only", "logits")
N_CLASSES = 527  # AudioSet


class MissingWeightsError(RuntimeError):
    """PaSST weights are neither cached nor downloadable."""


def _hear21passt():
    try:
        from hear21passt.models.passt import PaSST, checkpoint_filter_fn, get_model
        from hear21passt.models.preprocess import AugmentMelSTFT
        from hear21passt.wrapper import PasstBasicWrapper
    except ImportError as err:
        raise ImportError(f"the PaSST module needs the optional extra: pip install -e '.[passt]' ({err})") from err
    return get_model, checkpoint_filter_fn, AugmentMelSTFT, PasstBasicWrapper, PaSST


def build_network(arch: str | dict = DEFAULT_ARCH, mode: str = "all", **wrapper_options) -> torch.nn.Module:
    """hear21passt's mel front end + PaSST network (random weights) in its HEAR wrapper.

    `arch` is a hear21passt architecture name, or a dict of PaSST sizes (e.g. `{embed_dim: 64,
    depth: 2, num_heads: 2}`) for the 10x10-stride, distilled layout of PaSST-S. The mel
    settings are those of `hear21passt.base.get_basic_model`.
    """
    get_model, _, AugmentMelSTFT, PasstBasicWrapper, PaSST = _hear21passt()
    mel = AugmentMelSTFT(
        n_mels=128,
        sr=SAMPLE_RATE,
        win_length=800,
        hopsize=320,
        n_fft=1024,
        freqm=48,
        timem=192,
        htk=False,
        fmin=0.0,
        fmax=None,
        norm=1,
        fmin_aug_range=10,
        fmax_aug_range=2000,
    )
    if isinstance(arch, dict):
        net = PaSST(
            img_size=(128, 998),
            patch_size=16,
            stride=(10, 10),
            in_chans=1,
            num_classes=N_CLASSES,
            distilled=True,
            **arch,
        )
    else:
        with contextlib.redirect_stdout(io.StringIO()):  # hear21passt prints the whole network
            net = get_model(arch=arch, pretrained=False, n_classes=N_CLASSES)
    size = {"all": N_CLASSES + net.embed_dim, "embed_only": net.embed_dim, "logits": N_CLASSES}[mode]
    return PasstBasicWrapper(
        mel=mel, net=net, mode=mode, scene_embedding_size=size, timestamp_embedding_size=size, **wrapper_options
    ).eval()


def weights_file(weights: str, *, progress: bool = False) -> Path:
    """A local weights file: `weights` itself, or the hub-cache copy of a URL (downloaded once)."""
    parsed = urlparse(weights)
    if parsed.scheme in ("", "file"):
        path = Path(parsed.path if parsed.scheme else weights)
        if not path.is_file():
            raise MissingWeightsError(f"PaSST weights file {path} does not exist")
        return path
    cached = Path(torch.hub.get_dir()) / "checkpoints" / Path(parsed.path).name
    if cached.is_file():
        return cached
    cached.parent.mkdir(parents=True, exist_ok=True)
    try:
        torch.hub.download_url_to_file(weights, str(cached), progress=progress)
    except Exception as err:  # URLError, HTTPError, OSError, ...
        raise MissingWeightsError(
            f"cannot download PaSST weights {weights!r}: {err}\n"
            f"Provide them in one of these ways: download the file on a machine with network "
            f"access and put it at {cached} (torch's hub cache; TORCH_HOME moves it), or set "
            "models.<name>.options.weights in params.yaml to a local file path."
        ) from err
    return cached


class PasstModel(torch.nn.Module):
    """hear21passt's wrapper plus our windowing settings and the HEAR attributes."""

    sample_rate = SAMPLE_RATE
    num_hidden_states = 1
    stand_in = False
    pads_exactly = False  # windows are reflect-padded at the clip's ends

    def __init__(self, wrapper: torch.nn.Module, checkpoint: str, window_batch: int):
        super().__init__()
        self.wrapper = wrapper.eval()
        self.checkpoint = checkpoint
        self.window_batch = window_batch
        self.scene_embedding_size = wrapper.scene_embedding_size
        self.timestamp_embedding_size = wrapper.timestamp_embedding_size
        self.min_samples = wrapper.timestamp_window // 2 + 1  # windows are reflect-padded by half
        self.provenance = {}

    @property
    def device(self) -> torch.device:
        return self.wrapper.device_proxy.device

    def windowing(self, n_samples: int, scene: bool) -> tuple[int, int] | None:
        """(window, hop) in samples, or None when a scene clip is embedded in one pass."""
        w = self.wrapper
        if scene:
            return None if n_samples <= w.max_model_window else (w.max_model_window, w.scene_hop)
        return w.timestamp_window, w.timestamp_hop

    def n_frames(self, n_samples: int, scene: bool = False) -> int:
        win = self.windowing(n_samples, scene)
        if win is None:
            return 1
        window, hop = win
        return (n_samples + 2 * (window // 2) - window) // hop + 1


STANDIN_WEIGHTS = "passt-standin.pt"


def save_standin(out_dir: Path, arch: dict, *, seed: int) -> Path:
    """A seeded, randomly initialised PaSST-S layout of `arch` sizes as a checkpoint folder:
    its state dict and STAND_IN.json (arch, seed); load_model(checkpoint=out_dir) reads it."""
    import json

    from hearflow.core.io import atomic_path

    torch.manual_seed(seed)
    with atomic_path(Path(out_dir)) as tmp:
        tmp.mkdir(parents=True)
        torch.save(build_network(dict(arch)).net.state_dict(), tmp / STANDIN_WEIGHTS)
        note = {"stand_in": True, "note": "untrained stand-in, random weights", "arch": "passt", "sizes": arch}
        (tmp / "STAND_IN.json").write_text(json.dumps({**note, "seed": seed}, indent=2) + "\n")
    return Path(out_dir)


def load_model(
    model_file_path: str = "",
    *,
    checkpoint: str | None = None,
    stand_in: bool = False,
    weights: str = DEFAULT_WEIGHTS,
    arch: str | dict = DEFAULT_ARCH,
    mode: str = "all",
    timestamp_window_ms: float = 160.0,
    timestamp_hop_ms: float = 50.0,
    scene_window_ms: float = 10000.0,
    scene_hop_ms: float = 2500.0,
    window_batch: int = 64,
    device: str | None = None,
) -> PasstModel:
    """PaSST with weights from `weights` (URL or file; `model_file_path` overrides it).

    `arch` and `mode` pick the network and the embedding ("all": logits + features); the
    window and hop options are hear21passt's, in ms; `window_batch` bounds memory. A
    `checkpoint` folder written by save_standin (a stand-in) gives both weights and arch.
    """
    if checkpoint is not None:
        import json

        note = json.loads((Path(checkpoint) / "STAND_IN.json").read_text())
        model_file_path, arch = str(Path(checkpoint) / STANDIN_WEIGHTS), note["sizes"]
    if mode not in MODES:
        raise ValueError(f"PaSST mode must be one of {list(MODES)}, got {mode!r}")
    if timestamp_hop_ms > 50:
        raise ValueError(f"HEAR needs a timestamp hop <= 50 ms, got {timestamp_hop_ms}")
    source = model_file_path or weights
    path = weights_file(source)  # before building anything: fail early
    checkpoint_filter_fn = _hear21passt()[1]
    wrapper = build_network(
        arch,
        mode,
        max_model_window=scene_window_ms,
        timestamp_window=timestamp_window_ms,
        timestamp_hop=timestamp_hop_ms,
        scene_hop=scene_hop_ms,
    )
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    state = checkpoint_filter_fn(state, wrapper.net)
    try:
        wrapper.net.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise MissingWeightsError(f"{source}: not PaSST weights for arch {arch!r}: {err}") from err
    model = PasstModel(wrapper, os.fspath(source), window_batch)
    model.stand_in = bool(stand_in)
    return model.to(default_device(device))


def example(name: str, folder: Path) -> dict:
    """load_model options of the instance tests/test_models.py checks: "tiny", a randomly
    initialised PaSST-S layout at a fraction of the width, its weights written to `folder`."""
    torch.manual_seed(0)
    arch = {"embed_dim": 64, "depth": 2, "num_heads": 2}
    path = Path(folder) / "passt-tiny-random.pt"
    torch.save(build_network(arch).net.state_dict(), path)
    return {"weights": str(path), "arch": arch, "device": "cpu"}


@torch.no_grad()
def iter_layers(audio: torch.Tensor, model: PasstModel, *, scene: bool = False, lengths=None):
    """PaSST embeddings window batch by window batch: yields (start, hidden [1, n, t, D], ts [t]).

    audio [n, samples] float in [-1, 1] at 32 kHz, clips of equal length (`pads_exactly` is
    False). A scene clip up to `scene_window_ms` is one frame centred on the clip.
    """
    audio = as_batch(audio, SAMPLE_RATE)
    n, total = audio.shape
    if lengths is not None and any(int(x) != total for x in lengths):
        raise ValueError("PaSST windows reflect at the clip end: batch clips of equal length only")
    win = model.windowing(total, scene)
    if win is None:
        emb = model.wrapper(audio.to(model.device).contiguous()).float().cpu()  # [n, D]
        yield 0, emb[None, :, None, :], torch.tensor([total / 2 * 1000.0 / SAMPLE_RATE])
        return
    window, hop = win
    pad = window // 2
    if total <= pad:
        raise ValueError(
            f"clips of {total} samples are too short for PaSST's reflect padding of {pad} samples; pad them first"
        )
    padded = torch.nn.functional.pad(audio[:, None, :], (pad, pad), mode="reflect")[:, 0]  # [n, S + 2 pad]
    n_windows = model.n_frames(total, scene)
    group = max(1, model.window_batch // n)
    for start in range(0, n_windows, group):
        stop = min(n_windows, start + group)
        segments = padded[:, start * hop : (stop - 1) * hop + window].unfold(1, window, hop)  # [n, t, window]
        t = segments.shape[1]
        emb = model.wrapper(segments.reshape(n * t, window).to(model.device).contiguous()).float().cpu()
        ts = (torch.arange(start, stop, dtype=torch.float64) * hop * 1000.0 / SAMPLE_RATE).float()
        yield start, emb.reshape(n, t, -1)[None], ts


def embed_layers(audio: torch.Tensor, model: PasstModel, *, scene: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """PaSST frames of clips of equal length: hidden [1, n, T, D] float32, timestamps [n, T] ms."""
    hidden, ts = collect(iter_layers(audio, model, scene=scene))
    return hidden, ts.expand(hidden.shape[1], -1)


def get_timestamp_embeddings(audio: torch.Tensor, model: PasstModel) -> tuple[torch.Tensor, torch.Tensor]:
    """HEAR API: ([n, T, D] float32 every 50 ms, timestamps [n, T] ms)."""
    hidden, ts = embed_layers(audio, model)
    return hidden[0], ts


def get_scene_embeddings(audio: torch.Tensor, model: PasstModel) -> torch.Tensor:
    """HEAR API: [n, D]: one pass up to 10 s, else the mean over 10 s windows every 2.5 s."""
    return mean_over_time(iter_layers(audio, model, scene=True), "last")
