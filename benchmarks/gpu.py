"""GPU checks in one command: embedding throughput at full size, bf16 against fp32, and the
native probe on CUDA against the CPU.

    python benchmarks/gpu.py            # on a CUDA machine: reports/benchmarks/gpu.{json,md}, < 8 min on one H100
    python benchmarks/gpu.py --tiny     # tiny models on whatever device there is (the tests run it on the CPU)

1. Throughput. HuBERT xLarge and wav2vec 2.0 Large (the real architectures from
   catalog/checkpoints.yaml, random weights), CREPE full (its real bundled weights) and PaSST-S
   (hear21passt's architecture, random weights) embed `--batch` clips of `--seconds` of noise
   through their hearflow.embed.models module's `embed_layers` (every hidden state, what an embed job
   computes), in fp32: audio seconds per GPU second, and the model-FLOP utilisation that
   implies under the planner's FLOP model (params `resources.embed.<model>.
   gflop_per_audio_second`, peaks `plan.gpu_tflops`: the planner assumes an A100's FP32 19.5
   TFLOP/s; the device's own peak is in the report beside it where this script knows it).
2. bf16 against fp32. Per model, the largest absolute difference of the scene embeddings
   (`get_scene_embeddings`) under torch.autocast(bfloat16) and in fp32, and relative to the
   largest fp32 value. Then the demo task demo_tones embedded by CREPE (full; tiny with --tiny)
   through `hearflow.embed.job.embed_task` with `embed.precision` float32 and bfloat16, each
   probed by the native engine: the score difference. `embed.precision` applies on CUDA only,
   so on the CPU the two embeddings are the same run and the difference is 0 by construction.
3. The native stacked probe on the fp32 embedding, on CUDA and on the CPU: time and scores.

With --tiny, the same steps on tiny models (random stand-ins of the SSL and PaSST layouts, CREPE
tiny), short clips and a small probe: it checks that the script runs, on the CPU in the tests.
A GPU run's throughput goes into the planner as `audio_seconds_per_gpu_second` (params
`resources.embed.<model>`), replacing the FLOP model.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

# Dense peaks in TFLOP/s of the devices this workplace lends (NVIDIA datasheets: H100 SXM5
# FP32 67, BF16 989; H200 the same compute as H100 SXM). The planner's own are params plan.gpu_tflops.
DEVICE_PEAKS = {"H100": {"float32": 67.0, "bfloat16": 989.0}, "H200": {"float32": 67.0, "bfloat16": 989.0}}
FULL = {
    "hubert_xlarge": {"module": "ssl", "checkpoint": "facebook/hubert-xlarge-ll60k"},
    "wav2vec2_large": {"module": "ssl", "checkpoint": "facebook/wav2vec2-large-960h-lv60-self"},
    "crepe_full": {"module": "crepe", "capacity": "full"},
    "passt": {"module": "passt", "arch": "passt_s_swa_p16_128_ap476"},
}
TINY = {
    "hubert_xlarge": {"module": "ssl", "standin": "hubert"},
    "wav2vec2_large": {"module": "ssl", "standin": "wav2vec2"},
    "crepe_full": {"module": "crepe", "capacity": "tiny"},
    "passt": {"module": "passt", "arch": {"embed_dim": 32, "depth": 2, "num_heads": 2}},
}


def build(name: str, spec: dict, device: str):
    """(hearflow model module, model instance) with random weights (CREPE: its real ones)."""
    import torch

    torch.manual_seed(0)
    if spec["module"] == "ssl":
        from hearflow.embed.models import ssl

        if "standin" in spec:
            net = ssl.standin_network(spec["standin"], seed=0, hidden_size=32, num_hidden_layers=2, conv_dim=16)
        else:
            from transformers import AutoModel

            from hearflow.embed.models.standin import architecture_config

            with torch.device(device):  # initialise on the device: 1B parameters on the CPU take minutes
                net = AutoModel.from_config(architecture_config(spec["checkpoint"]))
        return ssl, ssl.SSLModel(net.eval(), name, "last", stand_in=True).to(device)
    if spec["module"] == "crepe":
        from hearflow.embed.models import crepe

        return crepe, crepe.load_model(capacity=spec["capacity"], device=device)
    from hearflow.embed.models import passt

    model = passt.PasstModel(passt.build_network(spec["arch"], "all"), f"random {name}", window_batch=64)
    model.stand_in = True
    return passt, model.to(device)


def sync(device: str) -> None:
    import torch

    if device == "cuda":
        torch.cuda.synchronize()


def throughput(module, model, audio, device: str, repeats: int) -> float:
    """Audio seconds per second of `embed_layers` (every hidden state), after one warm-up."""
    import torch

    with torch.inference_mode():
        module.embed_layers(audio, model)  # warm-up: kernels, allocator
        sync(device)
        t0 = time.perf_counter()
        for _ in range(repeats):
            module.embed_layers(audio, model)
        sync(device)
        elapsed = time.perf_counter() - t0
    return audio.shape[0] * audio.shape[1] / model.sample_rate * repeats / elapsed


def bf16_difference(module, model, audio, device: str) -> dict:
    import torch

    with torch.inference_mode():
        fp32 = module.get_scene_embeddings(audio, model).float()
        with torch.autocast(device_type=device, dtype=torch.bfloat16):
            bf16 = module.get_scene_embeddings(audio, model).float()
    diff = (bf16 - fp32).abs().max().item()
    return {"max_abs_diff": diff, "max_abs_fp32": fp32.abs().max().item(), "relative": diff / fp32.abs().max().item()}


def demo_probe(work: Path, *, tiny: bool, device: str) -> dict:
    """demo_tones through embed_task in float32 and bfloat16, probed by the native engine;
    the fp32 embedding probed on CUDA and on the CPU."""
    from hearflow.data import demo
    from hearflow.data.resample import resample_task
    from hearflow.embed.job import embed_task
    from hearflow.probe import ProbeSettings, probe_dirs

    task = "demo_tones-v1-full"
    src = demo.synthesize_task(task, work / "48000", seed=42, scale=0.5 if tiny else 1.0)
    task_dir = resample_task(src, work / "16000" / task, sr_in=48000, sr_out=16000)
    options = {"capacity": "tiny" if tiny else "full"}
    grid = {"hidden_dim": [64 if tiny else 256], "max_epochs": [5 if tiny else 30], "patience": [2 if tiny else 4]}
    out: dict = {"task": task, "model": f"crepe {options['capacity']}", "grid": grid}
    emb = {}
    for precision in ("float32", "bfloat16"):
        emb[precision] = embed_task(
            task_dir,
            work / f"emb-{precision}",
            module="crepe",
            options=options,
            precision=precision,
            device=device,
            progress=False,
        )
    scores = {}
    for precision, d in emb.items():
        settings = ProbeSettings(seed=42, device=device, grid=grid, max_grid_points=2)
        scores[precision] = probe_dirs("native", [d / "last"], settings)[0]["metrics"]
    out["scores"] = scores
    out["score_difference"] = {m: scores["bfloat16"][m] - scores["float32"][m] for m in scores["float32"]}
    runs = {}
    for where in dict.fromkeys([device, "cpu"]):
        settings = ProbeSettings(seed=42, device=where, grid=grid, max_grid_points=2)
        t0 = time.perf_counter()
        metrics = probe_dirs("native", [emb["float32"] / "last"], settings)[0]["metrics"]
        runs[where] = {"seconds": round(time.perf_counter() - t0, 2), "metrics": metrics}
    out["probe_devices"] = runs
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tiny", action="store_true", help="tiny models, short clips (the tests' CPU run)")
    ap.add_argument("--seconds", type=float, default=None, help="clip length (default 10; --tiny 1)")
    ap.add_argument("--batch", type=int, default=None, help="clips per forward pass (default 8; --tiny 2)")
    ap.add_argument("--repeats", type=int, default=None, help="timed passes per model (default 5; --tiny 1)")
    ap.add_argument("--out", type=Path, default=ROOT / "reports" / "benchmarks", help="folder of gpu.{json,md}")
    args = ap.parse_args(argv)
    import torch
    import yaml

    from hearflow.core import numerics

    tiny = args.tiny
    seconds = args.seconds or (1.0 if tiny else 10.0)
    batch = args.batch or (2 if tiny else 8)
    repeats = args.repeats or (1 if tiny else 5)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if not tiny and device != "cuda":
        sys.exit("benchmarks/gpu.py: no CUDA device; run it on a GPU machine, or with --tiny on the CPU")
    numerics.configure_torch(torch.get_num_threads())
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    peaks = params["plan"]["gpu_tflops"]
    name = torch.cuda.get_device_name(0) if device == "cuda" else platform.processor() or platform.machine()
    device_peak = next((p for key, p in DEVICE_PEAKS.items() if key in name), None)
    started = time.perf_counter()
    result: dict = {
        "device": name,
        "tiny": tiny,
        "torch": torch.__version__,
        "clip_seconds": seconds,
        "batch": batch,
        "repeats": repeats,
        "planner_peak_tflops": peaks,
        "device_peak_tflops": device_peak,
        "models": {},
    }
    g = torch.Generator().manual_seed(0)
    for model_name, spec in (TINY if tiny else FULL).items():
        module, model = build(model_name, spec, device)
        sr = model.sample_rate
        audio = (0.1 * torch.randn(batch, int(seconds * sr), generator=g)).to(device)
        rate = throughput(module, model, audio, device, repeats)
        # the FLOP model is the full-size models': no MFU for the tiny ones
        gflop = None if tiny else params["resources"]["embed"].get(model_name, {}).get("gflop_per_audio_second")
        row = {"audio_seconds_per_second": round(rate, 1), "gflop_per_audio_second": gflop}
        if gflop:
            achieved = gflop * rate / 1e3  # TFLOP/s
            row["achieved_tflops"] = round(achieved, 2)
            row["mfu_vs_planner_peak"] = round(achieved / peaks["float32"], 3)
            if device_peak:
                row["mfu_vs_device_peak"] = round(achieved / device_peak["float32"], 3)
        row["bf16_vs_fp32"] = bf16_difference(module, model, audio[:1], device)
        result["models"][model_name] = row
        print(f"gpu.py: {model_name}: {row}", flush=True)
        del model
        if device == "cuda":
            torch.cuda.empty_cache()
    with tempfile.TemporaryDirectory(prefix="gpu-bench-") as tmp:
        result["demo_probe"] = demo_probe(Path(tmp), tiny=tiny, device=device)
    result["wall_s"] = round(time.perf_counter() - started, 1)
    args.out.mkdir(parents=True, exist_ok=True)
    stem = "gpu_tiny" if tiny else "gpu"
    (args.out / f"{stem}.json").write_text(json.dumps(result, indent=1) + "\n")
    (args.out / f"{stem}.md").write_text(report(result))
    print(f"gpu.py: {args.out / stem}.md written in {result['wall_s']} s")
    return 0


def report(r: dict) -> str:
    lines = [
        "# GPU checks" + (" (--tiny: tiny models, not a measurement of the real ones)" if r["tiny"] else ""),
        "",
        f"`python benchmarks/gpu.py{' --tiny' if r['tiny'] else ''}` on {r['device']} (torch {r['torch']}), "
        f"{r['batch']} clips of {r['clip_seconds']:g} s of noise per pass, {r['repeats']} timed passes; {r['wall_s']} s in all.",
        "",
        "Random weights (CREPE: its bundled weights). MFU: achieved TFLOP/s under the planner's FLOP model "
        f"(`gflop_per_audio_second`) over the planner's FP32 peak {r['planner_peak_tflops']['float32']} TFLOP/s"
        + (f" and over this device's {r['device_peak_tflops']['float32']}" if r["device_peak_tflops"] else "")
        + ".",
        "",
        "| model | audio s per s | GFLOP per audio s | TFLOP/s | MFU (planner peak) | MFU (device peak) | bf16 vs fp32 max abs diff (relative) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for m, row in r["models"].items():
        d = row["bf16_vs_fp32"]
        lines.append(
            f"| {m} | {row['audio_seconds_per_second']:,.1f} | {row['gflop_per_audio_second'] or 'n/a'} | "
            f"{row.get('achieved_tflops', 'n/a')} | {row.get('mfu_vs_planner_peak', 'n/a')} | "
            f"{row.get('mfu_vs_device_peak', 'n/a')} | {d['max_abs_diff']:.3g} ({d['relative']:.2%}) |"
        )
    p = r["demo_probe"]
    lines += [
        "",
        f"Demo task {p['task']}, {p['model']}, native probe (grid {p['grid']}, 2 points):",
        "",
        "| metric | fp32 | bf16 | bf16 - fp32 |",
        "|---|---:|---:|---:|",
    ]
    for m, diff in p["score_difference"].items():
        lines.append(f"| {m} | {p['scores']['float32'][m]:.4f} | {p['scores']['bfloat16'][m]:.4f} | {diff:+.4f} |")
    lines += [
        "",
        "Native probe of the fp32 embedding by device:",
        "",
        "| device | seconds | scores |",
        "|---|---:|---|",
    ]
    for where, run in p["probe_devices"].items():
        lines.append(
            f"| {where} | {run['seconds']} | {json.dumps({k: round(v, 4) for k, v in run['metrics'].items()})} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
