"""How far derived ensemble scene embeddings are from the original recipe, on the demo suite.

    python benchmarks/ensemble_scene_deviation.py        # after `dvc repro` (or `snakemake`)

The pipeline combines the members' time-mean embeddings (hearflow.ensemble.derive); the NTU-GURA
recipe combined the aligned frames (CREPE interpolated in time to the wav2vec2 frame count)
and then took the time mean. Both are linear in the member frames except for the time
interpolation, so they differ only through the weights the interpolation gives to CREPE's
frames. This script recomputes the original recipe straight from the models for the last
split (test, or the last fold) of every scene task and every avg/cat configuration, and writes the deviation to
reports/benchmarks/ensemble_scene_deviation.{json,md}.
"""

from __future__ import annotations

import platform

import numpy as np
import torch

from hearflow.core import hear
from hearflow.core.audio import read_clip
from hearflow.core.io import write_json, write_text
from hearflow.embed.models import import_module
from hearflow.embed.models.common import select_layer
from hearflow.ensemble.derive import align_time, combine_members
from hearflow.workflow.config import ROOT, load_params, make_plan


def load_member(plan, model: str):
    spec = plan.models[model]
    options = dict(spec["options"])
    if "standin" in spec:
        options.update(checkpoint=str(ROOT / "data" / "models" / model), stand_in=True)
    mod = import_module(spec["module"])
    return mod, mod.load_model(**options, device="cpu")


def direct_scene(clip: np.ndarray, members, layers, combine: str, dim: int, pooling="mean") -> np.ndarray:
    """The original recipe for one clip: frames aligned and combined, then the time mean, or
    (fusion_cat_xwc_time.py) the first T // N * N frames in N groups, each averaged, joined."""
    frames = []
    for (mod, model), layer in zip(members, layers):
        hidden, _ = mod.embed_layers(torch.from_numpy(clip)[None], model, scene=True)
        frames.append(select_layer(hidden, layer)[0].numpy())  # [T_m, D_m]
    aligned, _ = align_time(frames)
    combined = combine_members(aligned, combine, dim)
    if pooling == "mean":
        return combined.mean(axis=0)
    n = pooling["groups"]
    size = len(combined) // n
    return np.concatenate([combined[g * size : (g + 1) * size].mean(axis=0) for g in range(n)])


def main() -> None:
    torch.set_num_threads(2)
    plan = make_plan(load_params(ROOT / "params.yaml"))
    rows = []
    loaded = {}
    for cfg in plan.configs.values():
        if cfg.combine == "single":
            continue
        members = [loaded.setdefault(m.model, load_member(plan, m.model)) for m in cfg.members]
        for task_name in plan.tasks:
            task = hear.Task.load(ROOT / "data" / "tasks" / "16000" / task_name)
            if task.is_event:
                continue
            split = task.splits[-1]
            derived_dir = ROOT / "results" / "configs" / cfg.name / task_name
            derived = hear.read_embeddings(derived_dir, split)
            names = sorted(task.labels(split))
            direct = np.stack(
                [
                    direct_scene(
                        read_clip(task.audio_dir(16000, split) / n, 16000),
                        members,
                        [m.layer for m in cfg.members],
                        cfg.combine,
                        cfg.dim,
                        cfg.pooling,
                    )
                    for n in names
                ]
            )
            diff = derived - direct
            rows.append(
                {
                    "config": cfg.name,
                    "task": task_name,
                    "split": split,
                    "clips": len(names),
                    "max_abs": float(np.abs(diff).max()),
                    "relative_l2": float(np.linalg.norm(diff) / np.linalg.norm(direct)),
                    "cosine_min": float(
                        np.min(
                            np.sum(derived * direct, 1)
                            / (np.linalg.norm(derived, axis=1) * np.linalg.norm(direct, axis=1))
                        )
                    ),
                }
            )
            print(rows[-1], flush=True)
    out = ROOT / "reports" / "benchmarks"
    result = {
        "suite": plan.suite,
        "machine": {"python": platform.python_version(), "torch": torch.__version__, "cpu": platform.processor()},
        "rows": rows,
        "worst_relative_l2": max(r["relative_l2"] for r in rows),
    }
    write_json(out / "ensemble_scene_deviation.json", result)
    lines = [
        "# Ensemble scene embeddings: derived vs original recipe\n",
        f"Suite `{plan.suite}`; `python benchmarks/ensemble_scene_deviation.py`.\n",
        "| config | task | split | clips | max abs | relative L2 | min cosine |",
        "|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['config']} | {r['task']} | {r['split']} | {r['clips']} | {r['max_abs']:.2e} | {r['relative_l2']:.2e} | {r['cosine_min']:.6f} |"
        for r in rows
    ]
    write_text(out / "ensemble_scene_deviation.md", "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
