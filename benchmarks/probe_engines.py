"""Native vs heareval probe engines on the same demo embedding dirs: time, ratio, scores.

    ./bootstrap.sh                                   # makes .venv-heareval too
    python benchmarks/probe_engines.py [--threads 1] [--seeds 5] [--scale 1.0]   # reduced grid
    python benchmarks/probe_engines.py --grid hear --seeds 1                     # HEAR's own grid

Both engines probe the four demo tasks (log-mel embeddings, hearflow.probe_compare) with
the same grid and the same torch thread count; heareval runs once (seed 42), the native
engine once per seed (42, 43, ...). `--grid parity` (default): PARITY_GRID, 4 points tried,
the demo's reduced setting, where heareval's start-up dominates its time. `--grid hear`:
heareval's own grid and selection (16 points, the first 8 of the seeded shuffle tried,
hidden_dim 1024, up to 500 epochs, patience 20), the protocol the paper's numbers come from.
Writes reports/benchmarks/probe_engines.{json,md} (parity grid) or
probe_engines_hear_grid.{json,md}, with `_threads<N>` before the suffix for --threads N > 1: machine, versions, per-task wall times, the
heareval/native time ratio (native: median over seeds) and the parity figures (native
mean and spread over seeds vs heareval).
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from hearflow.config import ROOT
from hearflow.io import write_json, write_text

HEAREVAL_PYTHON = ROOT / ".venv-heareval" / "bin" / "python"


def versions() -> dict:
    import torch

    heareval = subprocess.run(
        [str(HEAREVAL_PYTHON), "-c", "import pytorch_lightning, numpy, torch; "
         "print(pytorch_lightning.__version__, numpy.__version__, torch.__version__)"],
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "heareval": "2021.1.3",
        "heareval_env": dict(zip(("pytorch_lightning", "numpy", "torch"), heareval, strict=True)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--grid", choices=("parity", "hear"), default="parity")
    args = parser.parse_args()
    # Both engines get the same threads: torch in this process, OpenMP/MKL in heareval's.
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    import torch

    torch.set_num_threads(args.threads)
    import heareval.score  # noqa: F401  imported once per process (a Snakemake job: once per job)

    from hearflow.probe import DEFAULT_GRID
    from hearflow.probe_compare import PARITY_GRID, demo_embeddings, parity, run_engine

    # grid=None is heareval's default grid (probe.DEFAULT_GRID), of which it tries 8 points
    grid, points = (PARITY_GRID, 4) if args.grid == "parity" else (None, 8)

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="probe-engines-"))
    dirs = demo_embeddings(workdir, seed=42, scale=args.scale)
    load_before = os.getloadavg()
    rows = []
    for task, emb in dirs.items():
        common = {"grid": grid, "max_grid_points": points, "device": "cpu"}
        native = [run_engine("native", emb, seed=42 + s, **common) for s in range(args.seeds)]
        heareval = run_engine("heareval", emb, seed=42, heareval_python=HEAREVAL_PYTHON, **common)
        rows.append(
            {
                "task": task,
                "native_seconds": [round(r["seconds"], 2) for r in native],
                "heareval_seconds": round(heareval["seconds"], 2),
                "native_median_seconds": round(float(np.median([r["seconds"] for r in native])), 2),
                "ratio": heareval["seconds"] / float(np.median([r["seconds"] for r in native])),
                "parity": parity(native, heareval),
            }
        )
        print(task, rows[-1]["ratio"], flush=True)
    total_native = sum(r["native_median_seconds"] for r in rows)
    total_heareval = sum(r["heareval_seconds"] for r in rows)
    report = {
        "machine": {
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "load_average_before": [round(x, 2) for x in load_before],
            "load_average_after": [round(x, 2) for x in os.getloadavg()],
        },
        "versions": versions(),
        "settings": {"threads": args.threads, "seeds": args.seeds, "demo_scale": args.scale, "grid_name": args.grid,
                     "grid": grid or DEFAULT_GRID, "max_grid_points": points, "embeddings": "logmel 48 kHz, 64 mels, 50 ms hop"},  # fmt: skip
        "tasks": rows,
        "total_native_seconds": round(total_native, 2),
        "total_heareval_seconds": round(total_heareval, 2),
        "ratio": total_heareval / total_native,
    }
    out = ROOT / "reports" / "benchmarks"
    stem = "probe_engines" + ("" if args.grid == "parity" else "_hear_grid") + (
        "" if args.threads == 1 else f"_threads{args.threads}")
    write_json(out / f"{stem}.json", report)
    grid_text = ("the reduced parity grid (4 points: 2 depths x 2 learning rates, hidden 256, "
                 "30 epochs, patience 4)" if args.grid == "parity" else
                 "heareval's own grid (8 of 16 points tried, hidden 1024, up to 500 epochs, patience 20)")
    lines = [
        "# Probe engines: native vs heareval",
        "",
        f"`python benchmarks/probe_engines.py --grid {args.grid} --threads {args.threads} --seeds {args.seeds} "
        f"--scale {args.scale}`, {grid_text}, on {os.cpu_count()} cores (load average "
        f"{report['machine']['load_average_before'][0]} before, "
        f"{report['machine']['load_average_after'][0]} after: the machine was shared), "
        f"torch threads {args.threads} for both; heareval {report['versions']['heareval']} under "
        f"pytorch-lightning {report['versions']['heareval_env']['pytorch_lightning']}.",
        "",
        f"**heareval / native wall time: {report['ratio']:.1f}x** "
        f"({total_heareval:.0f} s vs {total_native:.0f} s for the four tasks; native: median over "
        "its seeds, in-process after imports; heareval: one run, a fresh process as the engine runs it).",
        "",
        f"| task | metric | native mean ({args.seeds} seeds) | native spread | heareval | difference | within max(spread, 0.02) | native s | heareval s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        for metric, p in r["parity"].items():
            lines.append(
                f"| {r['task']} | {metric} | {p['native_mean']:.4f} | {p['native_spread']:.4f} | "
                f"{p['heareval']:.4f} | {p['difference']:+.4f} | {'yes' if p['within'] else 'NO'} | "
                f"{r['native_median_seconds']:.1f} | {r['heareval_seconds']:.1f} |"
            )
    write_text(out / f"{stem}.md", "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    start = time.time()
    main()
    print(f"done in {time.time() - start:.0f} s")
