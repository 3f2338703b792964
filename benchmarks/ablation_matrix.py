"""The ablation matrix: embed once and derive, against every config running its members itself.

    .venv/bin/python benchmarks/ablation_matrix.py   # writes reports/benchmarks/ablation_matrix.{json,md}

Inputs are the active suite's tasks and models (the `demo` suite by default); the script first
asks Snakemake for the resampled tasks and stand-in checkpoints it needs (`--cores all`).
- derive (the pipeline): one `embed_task` per (model, task), then `build_config` for every
  (config, task) from the cached views;
- scratch (the original recipe's cost model: each ablation module ran its member models
  itself): for every (config, task), `embed_task` for each member, then `build_config`.
Both sides use the same code, so the outputs must be bit-identical; the script checks every
`{split}.embeddings.npy` byte for byte. Target (issue 10): derive >= 3x less wall time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET = 3.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="*", help="task names (default: all of the suite)")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "src"))
    import torch

    from hearflow.embed.job import embed_task
    from hearflow.ensemble.derive import build_config, member_views
    from hearflow.workflow.config import load_params, make_plan

    torch.set_num_threads(os.cpu_count() or 1)
    plan = make_plan(load_params())
    tasks = args.tasks or list(plan.tasks)
    models = sorted({m.model for cfg in plan.configs.values() for m in cfg.members})
    needed = [f"data/tasks/{plan.rate(m)}/{t}" for m in models for t in tasks]
    needed += [f"data/models/{m}" for m in models if "standin" in plan.models[m]]
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    subprocess.run(
        [sys.executable, "-m", "snakemake", "--cores", "all", *sorted(set(needed))],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )

    def options(model: str) -> dict:
        spec = plan.models[model]
        if "standin" in spec:
            return dict(spec["options"], checkpoint=str(ROOT / "data" / "models" / model), stand_in=True)
        return dict(spec["options"])

    def embed(model: str, task: str, out: Path) -> None:
        embed_task(
            ROOT / f"data/tasks/{plan.rate(model)}/{task}",
            out,
            module=plan.models[model]["module"],
            options=options(model),
            batch_size=plan.embed["batch_size"],
            scene_groups=plan.embed["scene_groups"],
            progress=False,
        )

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        t0 = time.perf_counter()
        embed_s = {}
        for m in models:
            t = time.perf_counter()
            for task in tasks:
                embed(m, task, tmp / "derive" / "members" / m / task)
            embed_s[m] = time.perf_counter() - t
        t_embed = time.perf_counter() - t0
        for name, cfg in plan.configs.items():
            for task in tasks:
                views = member_views(
                    [tmp / "derive" / "members" / m.model / task for m in cfg.members],
                    [m.view for m in cfg.members],
                    cfg.pooling,
                )
                build_config(
                    views,
                    tmp / "derive" / "configs" / name / task,
                    combine=cfg.combine,
                    dim=cfg.dim,
                    pooling=cfg.pooling,
                )
        t_derive = time.perf_counter() - t0

        t0 = time.perf_counter()
        member_runs = 0
        for name, cfg in plan.configs.items():
            for task in tasks:
                runs = []
                for i, m in enumerate(cfg.members):
                    out = tmp / "scratch" / name / task / f"member{i}-{m.model}"
                    embed(m.model, task, out)
                    member_runs += 1
                    runs.append(out)
                views = member_views(runs, [m.view for m in cfg.members], cfg.pooling)
                build_config(
                    views,
                    tmp / "scratch" / "configs" / name / task,
                    combine=cfg.combine,
                    dim=cfg.dim,
                    pooling=cfg.pooling,
                )
        t_scratch = time.perf_counter() - t0

        identical, compared = True, 0
        for name in plan.configs:
            for task in tasks:
                for f in sorted((tmp / "derive" / "configs" / name / task).glob("*.embeddings.npy")):
                    other = tmp / "scratch" / "configs" / name / task / f.name
                    identical &= f.read_bytes() == other.read_bytes()
                    compared += 1

    ratio = t_scratch / t_derive
    result = {
        "benchmark": "ablation_matrix",
        "suite": plan.suite,
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
        "versions": {"python": platform.python_version(), "torch": torch.__version__},
        "configs": len(plan.configs),
        "tasks": tasks,
        "models": models,
        "derive_seconds": round(t_derive, 2),
        "derive_embed_seconds": round(t_embed, 2),
        "derive_combine_seconds": round(t_derive - t_embed, 2),
        "embed_seconds_per_model": {m: round(s, 2) for m, s in embed_s.items()},
        "scratch_seconds": round(t_scratch, 2),
        "scratch_member_runs": member_runs,
        "derive_member_runs": len(models) * len(tasks),
        "ratio": round(ratio, 2),
        "target": TARGET,
        "met": ratio >= TARGET,
        "outputs_bit_identical": identical,
        "embedding_files_compared": compared,
    }
    out = ROOT / "reports" / "benchmarks"
    out.mkdir(parents=True, exist_ok=True)
    (out / "ablation_matrix.json").write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    lines = [
        "# Ablation matrix: embed once + derive vs each config from scratch",
        "",
        f"`.venv/bin/python benchmarks/ablation_matrix.py` on the `{plan.suite}` suite: {len(plan.configs)} configs x "
        f"{len(tasks)} tasks, members {', '.join(models)}.",
        "",
        "| side | member embedding runs | wall (s) |",
        "|---|---:|---:|",
        f"| derive (pipeline) | {result['derive_member_runs']} | {result['derive_seconds']} "
        f"(embed {result['derive_embed_seconds']}, combine {result['derive_combine_seconds']}) |",
        f"| scratch (per config) | {member_runs} | {result['scratch_seconds']} |",
        "",
        f"Ratio scratch / derive: **{result['ratio']}x** (target >= {TARGET}x: {'met' if result['met'] else 'missed'}). "
        f"Outputs bit-identical: {'yes' if identical else 'NO'} ({compared} embedding files compared).",
    ]
    (out / "ablation_matrix.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
