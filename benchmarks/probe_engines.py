"""Native vs heareval probe engines on the same demo embedding dirs: time, ratio, scores.

    ./bootstrap.sh --heareval                        # makes .venv-heareval too
    python benchmarks/probe_engines.py [--threads 1] [--seeds 5] [--heareval-runs 3] [--scale 1.0]   # reduced grid
    python benchmarks/probe_engines.py --grid hear --seeds 1 --heareval-runs 1  # HEAR's own grid

Both engines probe the four demo tasks (log-mel embeddings, benchmarks/probe_compare.py) with
the same grid and the same number of cores N (--threads): heareval with N torch threads,
the native engine with N single-threaded worker processes (probe_task's default). heareval
runs --heareval-runs times (seed 42; its scores must agree, its time is the median), the
native engine once per seed (42, 43, ...). `--grid parity`
(default): PARITY_GRID, 4 points tried, the demo's reduced setting. `--grid hear`:
heareval's own grid and selection (16 points, the first 8 of the seeded shuffle tried,
hidden_dim 1024, up to 500 epochs, patience 20), the protocol the paper's numbers come from.

Three ratios, heareval time / native time (native: median over seeds, in this process;
heareval: median over its runs):
`ratio`, heareval's runner as a process per task (as it is run, imports included);
`ratio_after_imports`, heareval's runner from the end of its imports (the launcher marks
it), engine against engine; `ratio_per_process`, native charged a fresh process's imports
per task too (a Snakemake job each). Writes reports/benchmarks/probe_engines.{json,md}
(parity grid) or probe_engines_hear_grid.{json,md} (heareval's grid), with `_threads<N>` before the suffix
for --threads N > 1: machine, versions, per-task wall times, the ratios and the parity
figures (native mean and spread over seeds vs heareval).
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from hearflow.core.io import write_json, write_text
from hearflow.workflow.config import ROOT

HEAREVAL_PYTHON = ROOT / ".venv-heareval" / "bin" / "python"


def versions() -> dict:
    import torch

    heareval = subprocess.run(
        [
            str(HEAREVAL_PYTHON),
            "-c",
            "import pytorch_lightning, numpy, torch; "
            "print(pytorch_lightning.__version__, numpy.__version__, torch.__version__)",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "heareval": "2021.1.3",
        "heareval_env": dict(zip(("pytorch_lightning", "numpy", "torch"), heareval, strict=True)),
    }


def native_import_seconds() -> float:
    """Wall time of a fresh process that imports what a native probe job imports."""
    start = time.time()
    subprocess.run(
        [sys.executable, "-c", "import hearflow.probe.native, heareval.score, sklearn.model_selection, pandas"],
        check=True,
        capture_output=True,
    )
    return time.time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--heareval-runs", type=int, default=3, help="heareval runs per task (median time)")
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
    from probe_compare import PARITY_GRID, demo_embeddings, parity, run_engine  # beside this script

    from hearflow.probe import DEFAULT_GRID

    # grid=None is heareval's default grid (probe.DEFAULT_GRID), of which it tries 8 points
    grid, points = (PARITY_GRID, 4) if args.grid == "parity" else (None, 8)

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="probe-engines-"))
    dirs = demo_embeddings(workdir, seed=42, scale=args.scale)
    load_before = os.getloadavg()
    rows = []
    for task, emb in dirs.items():
        common = {"grid": grid, "max_grid_points": points, "device": "cpu"}
        native = [run_engine("native", emb, seed=42 + s, **common) for s in range(args.seeds)]
        runs = [
            run_engine("heareval", emb, seed=42, heareval_python=HEAREVAL_PYTHON, **common)
            for _ in range(args.heareval_runs)
        ]
        if any(r["metrics"] != runs[0]["metrics"] for r in runs):
            raise SystemExit(
                f"{task}: heareval's scores differ between runs of one seed: {[r['metrics'] for r in runs]}"
            )
        heareval = {
            "metrics": runs[0]["metrics"],
            "seconds": float(np.median([r["seconds"] for r in runs])),
            "heareval_seconds_after_imports": float(np.median([r["heareval_seconds_after_imports"] for r in runs])),
        }
        native_median = float(np.median([r["seconds"] for r in native]))
        rows.append(
            {
                "task": task,
                "native_seconds": [round(r["seconds"], 2) for r in native],
                "heareval_seconds": round(heareval["seconds"], 2),
                "heareval_runs_seconds": [round(r["seconds"], 2) for r in runs],
                "heareval_runs_seconds_after_imports": [round(r["heareval_seconds_after_imports"], 2) for r in runs],
                "heareval_seconds_after_imports": round(heareval["heareval_seconds_after_imports"], 2),
                "native_median_seconds": round(native_median, 2),
                "ratio": heareval["seconds"] / native_median,
                "ratio_after_imports": heareval["heareval_seconds_after_imports"] / native_median,
                "parity": parity(native, heareval),
            }
        )
        print(task, rows[-1]["ratio"], rows[-1]["ratio_after_imports"], flush=True)
    native_imports = native_import_seconds()
    total_native = sum(r["native_median_seconds"] for r in rows)
    total_heareval = sum(r["heareval_seconds"] for r in rows)
    total_heareval_after = sum(r["heareval_seconds_after_imports"] for r in rows)
    total_native_processes = total_native + len(rows) * native_imports
    report = {
        "machine": {
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "load_average_before": [round(x, 2) for x in load_before],
            "load_average_after": [round(x, 2) for x in os.getloadavg()],
        },
        "versions": versions(),
        "settings": {
            "threads": args.threads,
            "seeds": args.seeds,
            "heareval_runs": args.heareval_runs,
            "demo_scale": args.scale,
            "grid_name": args.grid,
            "grid": grid or DEFAULT_GRID,
            "max_grid_points": points,
            "embeddings": "logmel 48 kHz, 64 mels, 50 ms hop",
        },
        "tasks": rows,
        "total_native_seconds": round(total_native, 2),
        "total_heareval_seconds": round(total_heareval, 2),
        "total_heareval_seconds_after_imports": round(total_heareval_after, 2),
        "native_import_seconds": round(native_imports, 2),
        # heareval's runner process per task vs the native engine in a running process
        "ratio": total_heareval / total_native,
        # engine against engine: both after their imports
        "ratio_after_imports": total_heareval_after / total_native,
        # a fresh process per task for both (a Snakemake job each)
        "ratio_per_process": total_heareval / total_native_processes,
    }
    out = ROOT / "reports" / "benchmarks"
    stem = (
        "probe_engines"
        + ("" if args.grid == "parity" else "_hear_grid")
        + ("" if args.threads == 1 else f"_threads{args.threads}")
    )
    write_json(out / f"{stem}.json", report)
    grid_text = (
        "the reduced parity grid (4 points: 2 depths x 2 learning rates, hidden 256, 30 epochs, patience 4)"
        if args.grid == "parity"
        else "heareval's own grid (8 of 16 points tried, hidden 1024, up to 500 epochs, patience 20)"
    )
    lines = [
        "# Probe engines: native vs heareval",
        "",
        f"`python benchmarks/probe_engines.py --grid {args.grid} --threads {args.threads} --seeds {args.seeds} "
        f"--heareval-runs {args.heareval_runs} --scale {args.scale}`, {grid_text}, on {os.cpu_count()} cores (load average "
        f"{report['machine']['load_average_before'][0]} before, "
        f"{report['machine']['load_average_after'][0]} after: the machine was shared), "
        f"{args.threads} core(s) for each engine: heareval with {args.threads} torch thread(s), native "
        f"with {args.threads} single-threaded worker process(es); heareval {report['versions']['heareval']} "
        f"under pytorch-lightning {report['versions']['heareval_env']['pytorch_lightning']}.",
        "",
        f"heareval / native wall time for the four tasks (native: median over its {args.seeds} seeds; heareval: "
        f"median of {args.heareval_runs} run(s) of seed 42, identical scores):",
        "",
        "| comparison | heareval | native | ratio |",
        "|---|---:|---:|---:|",
        f"| heareval's runner process per task vs the native engine in a running process | "
        f"{total_heareval:.1f} s | {total_native:.1f} s | **{report['ratio']:.1f}x** |",
        f"| engine vs engine, both after their imports | {total_heareval_after:.1f} s | {total_native:.1f} s | "
        f"**{report['ratio_after_imports']:.1f}x** |",
        f"| a fresh process per task for both (native imports {native_imports:.1f} s each) | "
        f"{total_heareval:.1f} s | {total_native_processes:.1f} s | **{report['ratio_per_process']:.1f}x** |",
        "",
        f"| task | metric | native mean ({args.seeds} seeds) | native spread | heareval | difference | within max(spread, 0.02) | native s | heareval s | heareval s after imports |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        for metric, p in r["parity"].items():
            lines.append(
                f"| {r['task']} | {metric} | {p['native_mean']:.4f} | {p['native_spread']:.4f} | "
                f"{p['heareval']:.4f} | {p['difference']:+.4f} | {'yes' if p['within'] else 'NO'} | "
                f"{r['native_median_seconds']:.2f} | {r['heareval_seconds']:.1f} | {r['heareval_seconds_after_imports']:.1f} |"
            )
    write_text(out / f"{stem}.md", "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    start = time.time()
    main()
    print(f"done in {time.time() - start:.0f} s")
