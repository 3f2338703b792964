"""Resource planner: what a suite's run will write, compute and submit, before it runs.

    python -m hearflow.workflow.plan --suite hear2021            # the full HEAR 2021 run
    python -m hearflow.workflow.plan --suite hear2021-sim --json reports/plan/hear2021-sim.json
    snakemake plan                                      # the active suite -> reports/plan/<suite>.md

Per task and in total: audio hours; archive, extracted (48 kHz) and resampled GB; member
view GB (every view rule `embed` writes: last, fusion, per-layer and time-group scene views)
and config view GB (rule `ensemble`); DVC cache GB and the workspace's extra copy under the
cache link type of .dvc/config; GPU-hours per model; Snakemake and Slurm job counts; the
memory and time each embed job asks for.

The sizes come from a model of the files the pipeline writes (WAV: 44-byte header + 16-bit
mono PCM; heareval's raw float32 embeddings; label and timestamp files), driven by each
task's shape: the catalog's clip counts, durations, vocabularies and event densities for a
real suite, hearflow.data.sim's shapes for hear2021-sim. tests/test_plan.py checks the model
against what a hear2021-sim run actually wrote (every size within 10%), so that the
full-scale figures rest on a checked model.

GPU time: an embedding's arithmetic is `gflop_per_audio_second` (resources.embed.<model>,
derived from each architecture's parameters and frame rate) per second of audio; at
`plan.gpu_tflops` peak and `plan.mfu` utilisation that gives audio seconds per GPU second,
unless the model states a measured `audio_seconds_per_gpu_second`.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import asdict
from pathlib import Path

import yaml

from hearflow.core.hear import ARCHIVE_RATE
from hearflow.workflow.sizes import (
    ARCHIVE_RATIO,
    GB,
    ModelFacts,
    config_bytes,
    label_file_bytes,
    member_bytes,
    model_facts,
    real_shapes,
    sim_shapes,
    tar_bytes,
    wav_bytes,
)

ROOT = Path(__file__).resolve().parents[3]
# ------------------------------------------------------------------------------ the plan


def _cache_type(root: Path) -> str:
    cfg = root / ".dvc" / "config"
    if cfg.is_file():
        for line in cfg.read_text().splitlines():
            key, _, value = line.partition("=")
            if key.strip() == "type":
                return value.strip()
    return "copy"


def throughput(m: ModelFacts, gpu: dict) -> float | None:
    """Audio seconds per GPU second: measured (audio_seconds_per_gpu_second), else the FLOP
    model's peak x utilisation / arithmetic per audio second; None without either."""
    if m.audio_seconds_per_gpu_second:
        return m.audio_seconds_per_gpu_second
    if m.gflop_per_audio_second:
        return gpu["peak_tflops"] * 1e3 * gpu["mfu"] / m.gflop_per_audio_second
    return None


def gpu_hours(seconds: float, m: ModelFacts, gpu: dict) -> float | None:
    rate = throughput(m, gpu)
    return None if not rate else seconds / rate / 3600


def slurm_jobs(counts: dict[str, int], profile: dict) -> int:
    """Slurm submissions: a group runs up to group-components connected components per job
    (profiles/slurm: one task's data chain; 13 ensemble -> probe chains)."""
    groups, comps = profile.get("groups", {}), profile.get("group-components", {})
    alone = sum(n for rule, n in counts.items() if rule not in groups)
    by_group: dict[str, list[str]] = {}
    for rule, g in groups.items():
        by_group.setdefault(g, []).append(rule)
    grouped = 0
    for g, rules in by_group.items():
        # one connected component per chain: per task for data (archive -> download ->
        # extract -> resample at each rate), per (config, task) for score (ensemble -> probe),
        # per config with wide probe jobs (its ensembles -> its probe_wide job)
        chains = min((counts[r] for r in rules if counts.get(r)), default=0)
        grouped += math.ceil(chains / comps.get(g, 1)) if chains else 0
    return alone + grouped


def job_counts(params: dict, suite: str) -> dict[str, int]:
    """Snakemake jobs per rule of a suite's whole run (rules/*.smk: one download, extraction
    and resampling per task, one embedding per model and task, one ensemble and probe per
    config and task (one probe per config with wide probe jobs), one layer-wise probe per per-layer model and scene task), the report's
    jobs together under "report"."""
    from hearflow.workflow.config import make_plan, wide_embeds, wide_probes
    from hearflow.workflow.targets import (
        SYNTH_RULES,
        layer_probe_pairs,
        layer_probe_scores,
        report_figures,
        report_outputs,
    )

    params = dict(params, suite=suite)
    plan = make_plan(params)
    settings = params["suites"][suite]
    archive_rates = settings.get("archive_rates", [ARCHIVE_RATE])
    direct = [ARCHIVE_RATE] + [r for r in plan.rates if r in archive_rates and r != ARCHIVE_RATE]
    resampled = [r for r in plan.rates if r not in archive_rates]
    n_tasks, n_cfg = len(plan.tasks), len(plan.configs)
    counts = {
        "download": n_tasks * len(direct),
        "extract": n_tasks * len(direct),
        "resample": n_tasks * len(resampled),
        "standin": sum("standin" in spec for spec in plan.models.values()),
        # wide embedding jobs (suites.<suite>.embed_jobs): one per model over every task
        **({"embed_wide": len(plan.models)} if wide_embeds(params) else {"embed": n_tasks * len(plan.models)}),
        "ensemble": n_tasks * n_cfg,
        # wide probe jobs (suites.<suite>.probe_jobs): one per config over every task
        **({"probe_wide": n_cfg} if wide_probes(params) else {"probe": n_tasks * n_cfg}),
        # wide probe jobs probe every layer of a model on every scene task in one job too
        **(
            {"probe_layers_wide": len({m for m, _ in layer_probe_pairs(plan)})}
            if wide_probes(params)
            else {"probe_layers": len(layer_probe_scores(plan))}
        ),
    }
    synth = SYNTH_RULES.get(suite)
    if synth:
        counts = {synth: n_tasks, **counts}
    report = report_figures(params, plan)
    outs = report_outputs(plan, report["names"])
    # one job per table (md, csv, tex), per figure, metrics, report.html, the score plot
    counts["report"] = len(outs["tables"]) // 3 + len(report["names"]) + 3
    return counts


def make(params: dict, suite: str, root: Path = ROOT) -> dict:
    """The plan of `suite` as a dict: per task rows, per model rows, totals."""
    from hearflow.workflow.config import make_plan

    params = dict(params, suite=suite)
    plan = make_plan(params)
    settings = params["suites"][suite]
    catalog = plan.catalog
    if not catalog:
        raise ValueError(
            f"suite {suite!r} has no task catalog: the planner sizes catalog suites (hear2021, hear2021-sim)"
        )
    if "scale" in settings:
        shapes = sim_shapes(catalog, plan.tasks, settings)
    else:
        shapes = real_shapes(catalog, plan.tasks)
    embed_req = params["resources"]["embed"]
    facts = {
        name: model_facts(name, spec, {**embed_req["default"], **embed_req.get(name, {})})
        for name, spec in plan.models.items()
    }
    groups = tuple(plan.embed.get("scene_groups", ()))
    archive_rates = settings.get("archive_rates", [ARCHIVE_RATE])
    resampled = [r for r in plan.rates if r not in archive_rates]
    rows = []
    for s in shapes:
        members = {m: member_bytes(s, facts[m], groups) for m in facts}
        configs = {c: config_bytes(s, cfg, facts) for c, cfg in plan.configs.items()}
        row = {
            "task": s.task,
            "category": s.category,
            "clips": s.clips,
            "audio_hours": s.seconds / 3600,
            "archive_gb": tar_bytes(s, ARCHIVE_RATE) * ARCHIVE_RATIO / GB,
            "extracted_gb": (wav_bytes(s, ARCHIVE_RATE) + label_file_bytes(s)) / GB,
            "resampled_gb": {r: (wav_bytes(s, r) + label_file_bytes(s)) / GB for r in resampled},
            "member_gb": {m: b / GB for m, b in members.items()},
            "config_gb": {c: b / GB for c, b in configs.items()},
        }
        if "scale" in settings:
            row["mirror_gb"] = row["archive_gb"]
        rows.append(row)
    seconds = sum(s.seconds for s in shapes)
    precision = plan.embed.get("precision", "float32")
    gpu = {**params["plan"], "precision": precision, "peak_tflops": params["plan"]["gpu_tflops"][precision]}
    min_runtime = params["resources"]["min_runtime"]
    from hearflow.workflow.resources import runtime_minutes

    models = []
    longest = max(s.seconds for s in shapes)
    for m, f in facts.items():
        spec = f.request
        models.append(
            {
                "model": m,
                "gpu_hours": gpu_hours(seconds, f, gpu),
                "audio_seconds_per_gpu_second": throughput(f, gpu),
                "throughput_from": "measured" if f.audio_seconds_per_gpu_second else "FLOP model",
                "gpu": bool(spec.get("gpu", 0)),
                "gflop_per_audio_second": f.gflop_per_audio_second,
                "mem_mb": int(spec["mem_mb"]),
                "threads": int(spec["threads"]),
                "runtime_min_longest_task": runtime_minutes(spec, longest, 1, min_runtime),
            }
        )
    counts = job_counts(params, suite)
    profile = yaml.safe_load((root / "profiles" / "slurm" / "config.yaml").read_text())
    cache_type = _cache_type(root)
    results_gb = 0.0001 * len(plan.tasks) * len(plan.configs)  # scores.json files: ~100 kB each at most
    total = {
        "audio_hours": seconds / 3600,
        "archive_gb": sum(r["archive_gb"] for r in rows),
        "extracted_gb": sum(r["extracted_gb"] for r in rows),
        "resampled_gb": sum(sum(r["resampled_gb"].values()) for r in rows),
        "member_gb": sum(sum(r["member_gb"].values()) for r in rows),
        "config_gb": sum(sum(r["config_gb"].values()) for r in rows),
        "mirror_gb": sum(r.get("mirror_gb", 0.0) for r in rows),
    }
    outputs = sum(v for k, v in total.items() if k.endswith("_gb")) + results_gb
    total["dvc_cache_gb"] = outputs
    total["dvc_cache_type"] = cache_type
    total["workspace_gb"] = outputs if cache_type.split(",")[0] in ("hardlink", "symlink", "reflink") else 2 * outputs
    total["snakemake_jobs"] = sum(counts.values())
    total["slurm_jobs"] = slurm_jobs(counts, profile)
    return {
        "suite": suite,
        "tasks": rows,
        "models": models,
        "jobs": counts,
        "total": total,
        "gpu": gpu,
        "shapes": [asdict(s) for s in shapes],
    }


def _gb(x: float) -> str:
    return f"{x:,.1f}" if x >= 0.95 else f"{x:.2f}" if x >= 0.01 else f"{x:.4f}"


def render(p: dict) -> str:
    t = p["total"]
    lines = [
        f"# Resource plan: suite `{p['suite']}`",
        "",
        "`python -m hearflow.workflow.plan --suite "
        + p["suite"]
        + "` (hearflow.workflow.plan; sizes in GB = 1e9 bytes).",
        "",
        "| task | clips | audio h | archive | extracted 48 kHz | resampled | member views | config views |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in p["tasks"]:
        lines.append(
            f"| `{r['task']}` | {r['clips']:,} | {r['audio_hours']:.2f} | {_gb(r['archive_gb'])} | "
            f"{_gb(r['extracted_gb'])} | {_gb(sum(r['resampled_gb'].values()))} | "
            f"{_gb(sum(r['member_gb'].values()))} | {_gb(sum(r['config_gb'].values()))} |"
        )
    lines.append(
        f"| **total** | {sum(r['clips'] for r in p['tasks']):,} | {t['audio_hours']:.1f} | {_gb(t['archive_gb'])} | "
        f"{_gb(t['extracted_gb'])} | {_gb(t['resampled_gb'])} | {_gb(t['member_gb'])} | {_gb(t['config_gb'])} |"
    )
    link = t["dvc_cache_type"]
    lines += [
        "",
        f"DVC cache: {_gb(t['dvc_cache_gb'])} GB (every stage output once). Cache link type `{link}` "
        f"(.dvc/config): the workspace then needs {_gb(t['workspace_gb'])} GB with the cache"
        + (" (hardlinks: no second copy)." if t["workspace_gb"] == t["dvc_cache_gb"] else " (copies: twice)."),
        "",
        f"Jobs: {t['snakemake_jobs']:,} Snakemake jobs ("
        + ", ".join(f"{k} {v:,}" for k, v in p["jobs"].items() if v)
        + f"); {t['slurm_jobs']:,} Slurm submissions with profiles/slurm's groups.",
        "",
        f"GPU time at {p['gpu']['peak_tflops']:g} TFLOP/s peak ({p['gpu']['precision']}, embed.precision) and "
        f"{p['gpu']['mfu']:.0%} model-FLOP utilisation (params.yaml `plan`; a model's measured "
        "`audio_seconds_per_gpu_second` replaces the FLOP model):",
        "",
        "| model | GFLOP per audio s | audio s per GPU s | GPU-hours | embed job request: memory | threads | "
        "runtime (longest task) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for m in p["models"]:
        gpu = m["gpu"] and m["gpu_hours"] is not None
        hours = f"{m['gpu_hours']:,.1f}" if gpu else ("n/a (no GPU)" if not m["gpu"] else "n/a")
        rate = f"{m['audio_seconds_per_gpu_second']:,.0f} ({m['throughput_from']})" if gpu else "n/a"
        gflop = "n/a" if m["gflop_per_audio_second"] is None else f"{m['gflop_per_audio_second']:g}"
        lines.append(
            f"| `{m['model']}` | {gflop} | {rate} | {hours} | {m['mem_mb'] / 1000:g} GB | {m['threads']} | "
            f"{m['runtime_min_longest_task']} min |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m hearflow.workflow.plan", description=__doc__.split("\n\n")[0])
    ap.add_argument("--suite", default=None, help="a suite of params.yaml (default: its `suite`)")
    ap.add_argument("--params", type=Path, default=ROOT / "params.yaml")
    ap.add_argument("--json", type=Path, default=None, help="also write the plan as JSON here")
    ap.add_argument("--output", type=Path, default=None, help="write the Markdown here instead of stdout")
    ap.add_argument(
        "--update-page",
        type=Path,
        default=None,
        help="replace the block between <!-- plan:SUITE --> and <!-- /plan --> of this file",
    )
    args = ap.parse_args(argv)
    from hearflow.workflow.config import load_params

    params = load_params(args.params)
    suite = args.suite or params["suite"]
    if suite not in params["suites"]:
        ap.error(f"--suite {suite!r}: not a suite of {args.params} ({sorted(params['suites'])})")
    p = make(params, suite, args.params.resolve().parent)
    text = render(p)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text)
    else:
        sys.stdout.write(text)
    if args.update_page:
        page = args.update_page.read_text()
        head, rest = page.split(f"<!-- plan:{suite} -->\n", 1)
        tail = rest.split("<!-- /plan -->", 1)[1]
        args.update_page.write_text(f"{head}<!-- plan:{suite} -->\n{text.split(chr(10), 3)[3]}<!-- /plan -->{tail}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(p, indent=1, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
