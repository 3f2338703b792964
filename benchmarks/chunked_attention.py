"""How far chunked attention (clips over `chunk_seconds`) is from whole-clip attention.

    .venv/bin/python benchmarks/chunked_attention.py     # writes reports/benchmarks/chunked_attention.{json,md}

The SSL module embeds clips longer than `chunk_seconds` in chunks with `context_seconds` of
audio either side (hearflow.embed.models.ssl); the NTU-GURA submission ran them in one pass. This
measures the difference on a 120 s clip (DCASE 2016 and MAESTRO's length) of generated
audio (tones in noise), with the real context (2 s) and chunks of 5, 10 and 30 s (the
default), through the demo's HuBERT stand-in (seeded, random weights: its attention is more
diffuse than a trained model's, so these are the stand-in's figures, not the checkpoints').
Per view: max abs difference of any frame, relative L2 over all frames, and relative L2 of
the scene embedding (time mean). tests/test_streaming.py asserts a bound on a shorter clip.
"""

from __future__ import annotations

import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from hearflow.core.io import write_json, write_text
from hearflow.embed.models import ssl
from hearflow.embed.models.common import select_layer
from hearflow.embed.models.standin import build_standin

ROOT = Path(__file__).resolve().parents[1]
SECONDS = 120.0
CONTEXT = 2.0
CHUNKS = (5.0, 10.0, 30.0)
STANDIN = {"arch": "hubert", "hidden_size": 32, "num_hidden_layers": 4, "conv_dim": 32}  # params.yaml hubert_standin


def clip(seconds: float, seed: int = 0) -> torch.Tensor:
    """Tones that change every 0.5 s in light noise: [1, samples] at 16 kHz."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * 16000)) / 16000
    f0 = rng.uniform(100, 1000, size=int(np.ceil(seconds * 2)))[(t * 2).astype(int)]
    audio = 0.3 * np.sin(2 * np.pi * np.cumsum(f0) / 16000) + 0.02 * rng.standard_normal(len(t))
    return torch.from_numpy(audio.astype(np.float32))[None]


def errors(whole: torch.Tensor, chunked: torch.Tensor) -> dict:
    """whole/chunked hidden [L, 1, T, D] -> per view (last, fusion) error figures."""
    out = {}
    for view in ("last", "fusion"):
        a, b = select_layer(whole, view)[0], select_layer(chunked, view)[0]
        out[view] = {
            "max_abs": float((a - b).abs().max()),
            "relative_l2": float(torch.linalg.norm(a - b) / torch.linalg.norm(a)),
            "scene_relative_l2": float(torch.linalg.norm(a.mean(0) - b.mean(0)) / torch.linalg.norm(a.mean(0))),
        }
    return out


def main() -> None:
    torch.set_num_threads(2)
    audio = clip(SECONDS)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = build_standin(
            STANDIN["arch"], Path(tmp) / "standin", seed=42, **{k: v for k, v in STANDIN.items() if k != "arch"}
        )
        whole_model = ssl.load_model(checkpoint=str(folder), chunk_seconds=SECONDS + 1, device="cpu")
        t0 = time.perf_counter()
        whole, _ = ssl.embed_layers(audio, whole_model)
        whole_s = time.perf_counter() - t0
        for chunk in CHUNKS:
            model = ssl.load_model(checkpoint=str(folder), chunk_seconds=chunk, context_seconds=CONTEXT, device="cpu")
            t0 = time.perf_counter()
            chunked, _ = ssl.embed_layers(audio, model)
            seconds = time.perf_counter() - t0
            rows.append(
                {
                    "chunk_seconds": chunk,
                    "context_seconds": CONTEXT,
                    "seconds": round(seconds, 2),
                    **errors(whole, chunked),
                }
            )
            print(rows[-1], flush=True)
    result = {
        "clip_seconds": SECONDS,
        "standin": STANDIN,
        "whole_clip_seconds": round(whole_s, 2),
        "rows": rows,
        "machine": {"python": platform.python_version(), "torch": torch.__version__, "cpu": platform.processor()},
    }
    out = ROOT / "reports" / "benchmarks"
    write_json(out / "chunked_attention.json", result)
    lines = [
        "# Chunked vs whole-clip attention (SSL, clips over chunk_seconds)\n",
        f"`python benchmarks/chunked_attention.py`: one {SECONDS:.0f} s clip, context {CONTEXT} s either side, "
        "the demo's HuBERT stand-in (random weights).\n",
        "| chunk s | view | max abs | relative L2 (frames) | relative L2 (scene mean) |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['chunk_seconds']:.0f} | {v} | {r[v]['max_abs']:.2e} | {r[v]['relative_l2']:.2e} | {r[v]['scene_relative_l2']:.2e} |"
        for r in rows
        for v in ("last", "fusion")
    ]
    write_text(out / "chunked_attention.md", "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
