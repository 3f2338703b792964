"""A weight-free log-mel baseline as a HEAR-API module: the sanity reference.

    model = load_model(sample_rate=32000, n_mels=128, hop_ms=10)
    emb, ts = get_timestamp_embeddings(audio, model)   # audio [n, samples] at 32 kHz

Log (natural) of a mel power spectrogram; frames are centred (`center=True`), so frame k is
centred at k * hop. The defaults follow PaSST's front end at 32 kHz (128 mels, 25 ms
window, 10 ms hop, 1024-point FFT). Scene embeddings are the time mean.
"""

from __future__ import annotations

from pathlib import Path

import torch

from hearflow.core.devices import default_device
from hearflow.embed.models import ModelSpec
from hearflow.embed.models.common import as_batch

SPEC = ModelSpec(sample_rate=32000)  # load_model's default `sample_rate`, PaSST's front end
EPS = 1e-6  # floor inside the log: silence maps to log(1e-6), not -inf


class LogMelModel(torch.nn.Module):
    """A mel filterbank plus the HEAR attributes."""

    num_hidden_states = 1
    stand_in = False
    pads_exactly = False  # centred frames reflect at the clip's end: padding would show

    def __init__(self, sample_rate: int, n_mels: int, hop_ms: float, win_ms: float, n_fft: int):
        super().__init__()
        import torchaudio

        if hop_ms > 50:
            raise ValueError(f"HEAR needs a timestamp hop <= 50 ms, got {hop_ms}")
        self.sample_rate = sample_rate
        self.hop = round(hop_ms * sample_rate / 1000)
        win = round(win_ms * sample_rate / 1000)
        if win > n_fft:
            raise ValueError(f"window of {win} samples exceeds n_fft={n_fft}")
        self.checkpoint = None  # no weights
        self.provenance = {}
        self.mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=sample_rate,
            n_fft=n_fft,
            win_length=win,
            hop_length=self.hop,
            n_mels=n_mels,
            center=True,
            power=2.0,
        )
        self.scene_embedding_size = self.timestamp_embedding_size = n_mels
        self.min_samples = n_fft // 2 + 1  # centred frames reflect-pad by n_fft // 2

    @property
    def device(self) -> torch.device:
        return self.mel.spectrogram.window.device

    def n_frames(self, n_samples: int, scene: bool = False) -> int:
        return 1 + n_samples // self.hop


def load_model(
    model_file_path: str = "",
    *,
    sample_rate: int = SPEC.sample_rate,
    n_mels: int = 128,
    hop_ms: float = 10.0,
    win_ms: float = 25.0,
    n_fft: int = 1024,
    device: str | None = None,
) -> LogMelModel:
    """A log-mel front end; `model_file_path` is unused (there are no weights)."""
    return LogMelModel(sample_rate, n_mels, hop_ms, win_ms, n_fft).to(default_device(device))


def example(name: str, folder: Path) -> dict:
    """load_model options of the instance tests/test_models.py checks: the defaults."""
    return {"device": "cpu"}


@torch.no_grad()
def iter_layers(audio: torch.Tensor, model: LogMelModel, *, scene: bool = False, lengths=None):
    """Log-mel frames in one chunk (a 10-minute clip is 60 000 x 128 floats, 30 MB):
    yields (0, hidden [1, n, T, n_mels] float32 on the CPU, ts [T] ms). Clips must have equal
    lengths (`pads_exactly` is False). `scene` changes nothing."""
    audio = as_batch(audio, model.sample_rate)
    if lengths is not None and any(int(x) != audio.shape[1] for x in lengths):
        raise ValueError("log-mel frames at the clip end reflect the signal: batch clips of equal length only")
    mel = model.mel(audio.to(model.device))  # [n, n_mels, T]
    hidden = torch.log(mel + EPS).transpose(1, 2)[None].float().cpu()  # [1, n, T, n_mels]
    k = torch.arange(hidden.shape[2], dtype=torch.float64)
    yield 0, hidden, (k * model.hop * 1000.0 / model.sample_rate).float()


def embed_layers(audio: torch.Tensor, model: LogMelModel, *, scene: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-mel frames: hidden [1, n, T, n_mels] float32 on the CPU, timestamps [n, T] in ms.

    audio [n, samples] float in [-1, 1] at `model.sample_rate`. `scene` changes nothing.
    """
    _, hidden, ts = next(iter_layers(audio, model, scene=scene))
    return hidden, ts.expand(hidden.shape[1], -1)


def get_timestamp_embeddings(audio: torch.Tensor, model: LogMelModel) -> tuple[torch.Tensor, torch.Tensor]:
    """HEAR API: ([n, T, n_mels] float32, timestamps [n, T] ms)."""
    hidden, ts = embed_layers(audio, model)
    return hidden[0], ts


def get_scene_embeddings(audio: torch.Tensor, model: LogMelModel) -> torch.Tensor:
    """HEAR API: [n, n_mels], the time mean of the log-mel frames."""
    hidden, _ = embed_layers(audio, model, scene=True)
    return hidden[0].mean(dim=1)
