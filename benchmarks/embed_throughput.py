"""Embedding throughput per model and batch policy, and the padding each policy feeds the model.

    .venv/bin/python benchmarks/embed_throughput.py      # writes reports/benchmarks/embed_throughput.{json,md}

One scene task at 16 kHz of `--clips` clips of seeded random lengths (1-6 s, a noisy tone
each, built by embed_memory.tone_task: clips of varied length are where batching policies differ) goes through
`hearflow.embed.job.embed_task`, the pipeline's own path, once per (model, policy):

- `one_by_one`: batch_size 1, no padding;
- `equal_length`: batches of up to 16 clips of equal length only (max_padding 0);
- `bucketed`: the pipeline's default, clips sorted by length and batched up to 16 while zero
  padding stays within 10% of the batch's samples (models that pad exactly only).

Per run: audio seconds per wall second, batches and the padding waste that `embed_task`
records in `provenance.json` (fraction of the samples fed that are zeros). For reference, the
padding waste of the naive policy (batches of 16 in file order, padded to the longest) is
computed from the same lengths. Target (issue 10): padding waste <= 10% with bucketing.
Models: the SSL encoder of `embed_memory.py` (HuBERT's layer-norm front end, random weights,
384-d, 6 layers), CREPE tiny (bundled weights) and the log-mel baseline (which does not pad
exactly, so bucketing falls back to equal lengths for it). No GPU here: on a CUDA machine
the same script measures the device `embed.device: null` picks.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

from embed_memory import MODELS as MEMORY_MODELS
from embed_memory import tone_task

ROOT = Path(__file__).resolve().parents[1]
SR = 16000
MODELS = {
    **MEMORY_MODELS,  # the SSL encoder and CREPE tiny of embed_memory.py
    "logmel": {"module": "logmel", "options": {"sample_rate": SR}},
}
POLICIES = {
    "one_by_one": {"batch_size": 1, "max_padding": 0.0},
    "equal_length": {"batch_size": 16, "max_padding": 0.0},
    "bucketed": {"batch_size": 16, "max_padding": 0.1},
}
NAIVE_BATCH = 16
TARGET_WASTE = 0.10


def varied_durations(n_clips: int, seed: int) -> dict[str, list[float]]:
    """n_clips test clips of 1-6 s on a 0.25 s grid (some share a length, as real
    variable-length sets do); one 1 s clip each for train and valid."""
    import numpy as np

    rng = np.random.default_rng(seed)
    return {"train": [1.0], "valid": [1.0], "test": [float(x) / 4 for x in rng.integers(4, 25, size=n_clips)]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "benchmarks")
    args = parser.parse_args()

    import torch

    from hearflow.core.audio import clip_frames
    from hearflow.embed.job import embed_task, padding_waste
    from hearflow.embed.models.standin import build_standin

    torch.set_num_threads(args.threads)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        task = tone_task(tmp / "tasks", varied_durations(args.clips, args.seed), "scene")
        test_dir = task / str(SR) / "test"
        lengths = {path.name: clip_frames(path, SR) for path in test_dir.glob("*.wav")}
        audio_seconds = sum(lengths.values()) / SR
        names = sorted(lengths)
        naive = padding_waste(lengths, [names[i : i + NAIVE_BATCH] for i in range(0, len(names), NAIVE_BATCH)])
        for model, spec in MODELS.items():
            options = dict(spec.get("options", {}))
            if "standin" in spec:
                options["checkpoint"] = str(build_standin(out_dir=tmp / "model", seed=0, **spec["standin"]))
            embed_task(
                task, tmp / "warmup", module=spec["module"], options=options, device="cpu", batch_size=1, progress=False
            )  # first-call costs out of the timings
            for policy, settings in POLICIES.items():
                out = tmp / f"{model}-{policy}"
                start = time.perf_counter()
                embed_task(task, out, module=spec["module"], options=options, device="cpu", progress=False, **settings)
                wall = time.perf_counter() - start
                prov = json.loads((out / "provenance.json").read_text())
                rows.append(
                    {
                        "model": model,
                        "policy": policy,
                        **settings,
                        "wall_seconds": round(wall, 3),
                        # every split is embedded: the test clips plus one 1 s clip each for train/valid
                        "audio_seconds": prov["audio_seconds"],
                        "audio_s_per_wall_s": round(prov["audio_seconds"] / wall, 3),
                        "batches": prov["batches"],
                        "padding_waste": prov["padding_waste"],
                    }
                )
                print(json.dumps(rows[-1]), flush=True)
    for model in MODELS:
        base = next(r for r in rows if r["model"] == model and r["policy"] == "one_by_one")
        for r in rows:
            if r["model"] == model:
                r["speedup_vs_one_by_one"] = round(base["wall_seconds"] / r["wall_seconds"], 2)
    bucketed = [r for r in rows if r["policy"] == "bucketed"]
    result = {
        "benchmark": "embed_throughput",
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "torch_threads": args.threads,
            "device": "cpu",
            "load_average_after": [round(x, 2) for x in os.getloadavg()],
        },
        "versions": {"python": platform.python_version(), "torch": torch.__version__},
        "task": {
            "clips": args.clips,
            "seed": args.seed,
            "test_audio_seconds": round(audio_seconds, 2),
            "lengths_s": sorted(round(n / SR, 2) for n in lengths.values()),
        },
        "naive_file_order_padding_waste": round(naive, 4),
        "runs": rows,
        "target_padding_waste": TARGET_WASTE,
        "met": all(r["padding_waste"] <= TARGET_WASTE for r in bucketed),
        "gpu_flops_fraction": "not measured: no GPU on this machine",
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "embed_throughput.json").write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    lines = [
        "# Embedding throughput per batch policy",
        "",
        f"`.venv/bin/python benchmarks/embed_throughput.py --clips {args.clips}` on {os.cpu_count()} cores, "
        f"CPU, torch threads {args.threads}: {args.clips} test clips of 1-6 s ({audio_seconds:.0f} s of audio) plus "
        "one 1 s clip each for train and valid.",
        "",
        f"Naive batching (16 in file order, padded to the longest) would feed **{100 * naive:.1f}%** zeros.",
        "",
        "| model | policy | batches | padding waste | wall (s) | audio s / wall s | speed-up vs one by one |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {r['model']} | {r['policy']} | {r['batches']} | {100 * r['padding_waste']:.1f}% | {r['wall_seconds']:.1f} | "
        f"{r['audio_s_per_wall_s']:.1f} | {r['speedup_vs_one_by_one']:.2f}x |"
        for r in rows
    ]
    lines += [
        "",
        f"Padding waste with bucketing <= {100 * TARGET_WASTE:.0f}%: **{'met' if result['met'] else 'NOT met'}**. "
        "The log-mel baseline does not pad exactly (reflected frames at the clip's end), so it batches equal "
        "lengths only and feeds no zeros. Fraction of a GPU's peak FLOP/s: not measured (no GPU here).",
    ]
    (args.out / "embed_throughput.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
