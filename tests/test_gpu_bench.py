"""benchmarks/gpu.py --tiny: the GPU checks' one command runs end to end on the CPU (tiny models)
and writes its report; the real run needs a CUDA device (docs/benchmarks.md)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

from tests.conftest import ROOT


def test_gpu_benchmark_tiny_runs_and_reports(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), CUDA_VISIBLE_DEVICES="")
    res = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "gpu.py"), "--tiny", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    r = json.loads((tmp_path / "gpu_tiny.json").read_text())
    assert r["tiny"] is True and set(r["models"]) == {"hubert_xlarge", "wav2vec2_large", "crepe_full", "passt"}
    for row in r["models"].values():
        assert row["audio_seconds_per_second"] > 0
        d = row["bf16_vs_fp32"]
        assert math.isfinite(d["max_abs_diff"]) and 0 < d["max_abs_fp32"]
        assert "mfu_vs_planner_peak" not in row  # no FLOP model for tiny models
    probe = r["demo_probe"]
    assert set(probe["scores"]["float32"]) == {"pitch_acc", "chroma_acc"}  # demo_tones' metrics
    # embed.precision applies on CUDA only: on the CPU both runs are fp32, the same scores
    assert probe["score_difference"] == {"pitch_acc": 0.0, "chroma_acc": 0.0}
    assert list(probe["probe_devices"]) == ["cpu"]
    md = (tmp_path / "gpu_tiny.md").read_text()
    assert "--tiny: tiny models" in md and "| crepe_full |" in md


def test_without_cuda_the_full_run_refuses():
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), CUDA_VISIBLE_DEVICES="")
    res = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu.py")], capture_output=True, text=True, env=env)
    assert res.returncode != 0 and "no CUDA device" in res.stderr
