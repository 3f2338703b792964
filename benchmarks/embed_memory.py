"""Peak memory and throughput of embedding one clip of 10 s, 1 min and 10 min.

    .venv/bin/python benchmarks/embed_memory.py            # writes reports/benchmarks/embed_memory.{json,md}

Each case runs `hearflow.embed.job.embed_task` (the pipeline's own path) in a fresh process on a
one-clip task, and reads the process's peak resident memory (VmHWM). A baseline case loads
the model and embeds nothing, so "working memory" = peak - baseline is what the clip costs.
Models: an SSL encoder with HuBERT's layer-norm front end (random weights, 384-d, 6 layers:
CPU-sized; the chunking is the same at any width) and CREPE tiny (bundled weights).
Target (issue 4 / 10): peak for 10 min <= 1.5 x peak for 10 s.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DURATIONS = {"10s": 10.0, "1min": 60.0, "10min": 600.0}
MODELS = {
    "ssl_layer_norm_384x6": {
        "module": "ssl",
        "standin": {"arch": "hubert", "hidden_size": 384, "num_hidden_layers": 6, "conv_dim": 128},
    },
    "crepe_tiny": {"module": "crepe", "options": {"capacity": "tiny"}},
}
TARGET = 1.5


def _peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def tone_task(root: Path, durations: dict[str, list[float]], embedding_type: str) -> Path:
    """A HEAR task at 16 kHz of noisy 440 Hz tones: `durations[split]` seconds per clip
    (clips `clip000.wav`, ...), each labelled "tone" (event tasks: one event over the clip)."""
    import numpy as np

    from hearflow.core import hear
    from hearflow.core.audio import write_clip

    sr = 16000
    task = root / "bench-v1-full"
    meta = {
        "task_name": task.name,
        "version": "v1",
        "embedding_type": embedding_type,
        "prediction_type": "multiclass" if embedding_type == "scene" else "multilabel",
        "split_mode": "trainvaltest",
        "nfolds": None,
        "sample_duration": None,
        "evaluation": ["top1_acc"] if embedding_type == "scene" else ["event_onset_200ms_fms"],
        "splits": list(durations),
    }
    task.mkdir(parents=True)
    (task / "task_metadata.json").write_text(json.dumps(meta))
    hear.write_vocabulary(task / "labelvocabulary.csv", ["tone"])
    rng = np.random.default_rng(0)
    for split, lengths in durations.items():
        labels = {}
        for i, seconds in enumerate(lengths):
            t = np.arange(int(seconds * sr)) / sr
            audio = (0.3 * np.sin(2 * np.pi * 440 * t) + 0.05 * rng.standard_normal(t.size)).astype(np.float32)
            name = f"clip{i:03d}.wav"
            write_clip(task / str(sr) / split / name, audio, sr)
            labels[name] = (
                ["tone"] if embedding_type == "scene" else [{"label": "tone", "start": 0.0, "end": 1000.0 * seconds}]
            )
        (task / f"{split}.json").write_text(json.dumps(labels))
    return task


def run_case(model: str, duration: str, embedding_type: str) -> dict:
    """In this process: embed one clip per split, report peak memory and wall time."""
    import torch

    from hearflow.embed.job import embed_task
    from hearflow.embed.models.standin import build_standin

    torch.set_num_threads(2)
    spec = MODELS[model]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        options = dict(spec.get("options", {}))
        if "standin" in spec:
            options["checkpoint"] = str(build_standin(out_dir=tmp / "model", seed=0, **spec["standin"]))
        if duration == "baseline":
            from hearflow.embed.models import import_module

            import_module(spec["module"]).load_model(**options, device="cpu")
            return {"peak_rss_mb": _peak_rss_mb(), "wall_seconds": 0.0, "audio_seconds": 0.0}
        task = tone_task(tmp / "tasks", {"train": [1.0], "valid": [1.0], "test": [DURATIONS[duration]]}, embedding_type)
        start = time.time()
        embed_task(task, tmp / "out", module=spec["module"], options=options, device="cpu", progress=False)
        wall = time.time() - start
    return {"peak_rss_mb": _peak_rss_mb(), "wall_seconds": wall, "audio_seconds": DURATIONS[duration] + 2.0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", nargs=3, metavar=("MODEL", "DURATION", "TYPE"), help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "benchmarks")
    parser.add_argument("--durations", nargs="+", default=list(DURATIONS), choices=list(DURATIONS))
    args = parser.parse_args()
    if args.case:
        print(json.dumps(run_case(*args.case)))
        return

    import torch

    rows = []
    for model in MODELS:
        for embedding_type in ("scene", "event"):
            for duration in ["baseline", *args.durations]:
                print(f"[embed_memory] {model} {embedding_type} {duration}", flush=True)
                res = subprocess.run(
                    [sys.executable, __file__, "--case", model, duration, embedding_type],
                    capture_output=True,
                    text=True,
                    cwd=ROOT,
                    check=True,
                    env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"},
                )
                rows.append(
                    {
                        "model": model,
                        "type": embedding_type,
                        "duration": duration,
                        **json.loads(res.stdout.strip().splitlines()[-1]),
                    }
                )
    summary = []
    for model in MODELS:
        for embedding_type in ("scene", "event"):
            case = {r["duration"]: r for r in rows if r["model"] == model and r["type"] == embedding_type}
            base = case["baseline"]["peak_rss_mb"]
            if "10s" in case and "10min" in case:
                ratio = case["10min"]["peak_rss_mb"] / case["10s"]["peak_rss_mb"]
                work = (case["10min"]["peak_rss_mb"] - base) / max(1e-9, case["10s"]["peak_rss_mb"] - base)
                summary.append(
                    {
                        "model": model,
                        "type": embedding_type,
                        "peak_ratio_10min_vs_10s": round(ratio, 3),
                        "working_ratio_10min_vs_10s": round(work, 2),
                        "target": TARGET,
                        "met": ratio <= TARGET,
                    }
                )
    result = {
        "benchmark": "embed_memory",
        "machine": {"platform": platform.platform(), "processor": platform.processor(), "cpus": 2},
        "versions": {"python": platform.python_version(), "torch": torch.__version__},
        "cases": rows,
        "summary": summary,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "embed_memory.json").write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    lines = [
        "# Embedding memory vs clip length",
        "",
        "`.venv/bin/python benchmarks/embed_memory.py`: a test clip of the given length (train/valid: 1 s) through",
        "`embed_task`, each case in a fresh process; peak = VmHWM; baseline = model loaded, nothing embedded.",
        "",
        "| model | type | clip | peak RSS (MB) | working (MB) | wall (s) | audio s / wall s |",
        "|---|---|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        base = next(
            x["peak_rss_mb"]
            for x in rows
            if x["model"] == r["model"] and x["type"] == r["type"] and x["duration"] == "baseline"
        )
        speed = f"{r['audio_seconds'] / r['wall_seconds']:.1f}" if r["wall_seconds"] else "-"
        lines.append(
            f"| {r['model']} | {r['type']} | {r['duration']} | {r['peak_rss_mb']:.0f} | "
            f"{r['peak_rss_mb'] - base:.0f} | {r['wall_seconds']:.1f} | {speed} |"
        )
    lines += [
        "",
        "| model | type | peak 10 min / 10 s | working 10 min / 10 s | target | met |",
        "|---|---|---:|---:|---:|---|",
    ]
    lines += [
        f"| {s['model']} | {s['type']} | {s['peak_ratio_10min_vs_10s']} | {s['working_ratio_10min_vs_10s']} | "
        f"<= {s['target']} | {'yes' if s['met'] else 'no'} |"
        for s in summary
    ]
    (args.out / "embed_memory.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
