"""Resource planner: what a suite's run will write, compute and submit, before it runs.

    python -m hearflow.plan --suite hear2021            # the full HEAR 2021 run
    python -m hearflow.plan --suite hear2021-sim --json reports/plan/hear2021-sim.json
    snakemake plan                                      # the active suite -> reports/plan/<suite>.md

Per task and in total: audio hours; archive, extracted (48 kHz) and resampled GB; member
view GB (every view rule `embed` writes: last, fusion, per-layer and time-group scene views)
and config view GB (rule `ensemble`); DVC cache GB and the workspace's extra copy under the
cache link type of .dvc/config; GPU-hours per model; Snakemake and Slurm job counts; the
memory and time each embed job asks for.

The sizes come from a model of the files the pipeline writes (WAV: 44-byte header + 16-bit
mono PCM; heareval's raw float32 embeddings; label and timestamp files), driven by each
task's shape: the catalog's clip counts, durations, vocabularies and event densities for a
real suite, hearflow.sim's shapes for hear2021-sim. tests/test_plan.py checks the model
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
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

from hearflow.hear import ARCHIVE_RATE

ROOT = Path(__file__).resolve().parents[2]
GB = 1e9
TAR_BLOCK = 512
# gzip (level 1 for hear2021-sim's archives) shrinks 16-bit PCM with a little noise by ~3%
# (measured on its 20 archives: 0.93-0.98 of the tar stream); the public archives'
# sizes are not published (catalog/hear2021.yaml), so the same ratio stands in for them.
ARCHIVE_RATIO = 0.955
NAME_CHARS_REAL = 24  # a real clip's file name (hashes, ids): an estimate
LABEL_CHARS_REAL = 10


@dataclass
class TaskShape:
    """What the planner needs to know of one task."""

    task: str
    category: str
    splits: list[str]
    event: bool
    labels: int
    pieces: list[tuple[float, int]]  # (clip seconds, clips) over all splits
    labels_per_clip: float = 1.0  # scene
    events_per_clip: float = 0.0  # event
    name_chars: int = NAME_CHARS_REAL
    label_chars: float = LABEL_CHARS_REAL
    metadata_bytes: int = 1000  # the task's task_metadata.json

    @property
    def clips(self) -> int:
        return sum(n for _, n in self.pieces)

    @property
    def seconds(self) -> float:
        return sum(d * n for d, n in self.pieces)


# ------------------------------------------------------------------------------ task shapes


def real_shapes(catalog: dict, tasks) -> list[TaskShape]:
    """Shapes of the real tasks from the catalog (clips, durations, labels, densities)."""
    out = []
    for t in tasks:
        f = catalog[t]
        raw = _metadata_raw(t)
        meta = json.loads(raw)
        if f.get("durations"):
            mean = f.get("mean_seconds") or math.sqrt(f["durations"][0] * f["durations"][1])
            pieces = [(float(mean), int(f["clips"]))]
        else:
            pieces = [(float(f["sample_duration"]), int(f["clips"]))]
        event = f["embedding_type"] == "event"
        per_clip = f.get("events_per_minute", 0) * pieces[0][0] / 60 if event else 0.0
        out.append(
            TaskShape(
                t,
                f["category"],
                meta["splits"],
                event,
                int(f["labels"]),
                pieces,
                labels_per_clip=f.get("labels_per_clip", 1.0),
                events_per_clip=per_clip,
                metadata_bytes=len(raw),
            )
        )
    return out


def sim_shapes(catalog: dict, tasks, settings: dict) -> list[TaskShape]:
    """Shapes of hear2021-sim's stand-ins (hearflow.sim), clip by clip."""
    from hearflow import sim

    out = []
    for t, s in sim.suite_shapes(catalog, tasks, settings).items():
        per_split = [s.durations[i % len(s.durations)] for i in range(s.clips)]
        counts: dict[float, int] = {}
        for d in per_split:
            counts[d] = counts.get(d, 0) + len(s.splits)
        raw = _metadata_raw(t)
        meta = json.loads(raw)
        multilabel = meta["prediction_type"] == "multilabel"
        vocab = sim.simtask.vocabulary(meta, s.vocabulary_size)
        name_chars = round(sum(len(x) for x in s.splits) / len(s.splits)) + len("_0000.wav")
        out.append(
            TaskShape(
                t,
                catalog[t]["category"],
                list(s.splits),
                s.events_per_clip is not None,
                s.vocabulary_size,
                sorted(counts.items()),
                labels_per_clip=1.0 if not multilabel or s.cover else 2.0,
                events_per_clip=float(s.events_per_clip or 0),
                name_chars=name_chars,
                label_chars=sum(map(len, vocab)) / len(vocab),
                metadata_bytes=len(raw),
            )
        )
    return out


def _metadata_raw(task: str) -> bytes:
    from hearflow.sim import metadata_bytes

    return metadata_bytes(task)


# ------------------------------------------------------------------------------ file sizes


def wav_bytes(shape: TaskShape, rate: int) -> int:
    """16-bit mono PCM WAV files at `rate`: a 44-byte header and 2 bytes per sample."""
    return sum(n * (44 + 2 * round(d * rate)) for d, n in shape.pieces)


# JSON and pickle sizes below follow the writers byte by byte where the content is known
# (hearflow.simtask's label files: json indent=1; hearflow.hear's heareval files): each
# constant is the bytes of one line or record of that format, as commented.
EVENT_VALUE_CHARS = 7  # an onset/offset in ms with 3 decimals, e.g. "667.692"
EVENT_SECONDS = 0.425  # mean event length: hear2021-sim's events last 250-600 ms


def _vocab(shape: TaskShape) -> list[int]:
    """Character counts of the labels (simtask's own labels for the sim; an estimate else)."""
    return [round(shape.label_chars)] * shape.labels


def label_file_bytes(shape: TaskShape) -> int:
    """task_metadata.json, labelvocabulary.csv ("idx,label" rows) and the split label files
    ({"name": [labels]} or {"name": [{"end", "label", "start"}]}, indent 1)."""
    vocab = 10 + sum(len(str(i)) + c + 2 for i, c in enumerate(_vocab(shape)))
    clip = shape.name_chars + 7 + 4  # ' "NAME": [' and ' ],' lines
    if shape.event:  # '  {', '   "end": V,', '   "label": "L",', '   "start": V', '  },'
        per_clip = clip + shape.events_per_clip * (2 * EVENT_VALUE_CHARS + shape.label_chars + 50)
    else:  # '  "L",'
        per_clip = clip + shape.labels_per_clip * (shape.label_chars + 6)
    return int(shape.metadata_bytes + vocab + shape.clips * per_clip + 2 * len(shape.splits))


def tar_bytes(shape: TaskShape, rate: int) -> int:
    """The archive's tar stream: each member a 512-byte header, data padded to 512 bytes."""
    members = shape.clips + 3 + 2 * len(shape.splits) + 3  # files, split and rate folders
    return wav_bytes(shape, rate) + label_file_bytes(shape) + members * (TAR_BLOCK + TAR_BLOCK // 2)


@dataclass
class ModelFacts:
    """What a model's views are made of."""

    name: str
    rate: int
    dim: int
    hidden_states: int
    event_hop_ms: float
    gflop_per_audio_second: float | None
    audio_seconds_per_gpu_second: float | None
    request: dict = field(default_factory=dict)


CREPE_MULTIPLIER = {"full": 32, "large": 24, "medium": 16, "small": 8, "tiny": 4}
PASST_LOGITS = 527


def model_facts(name: str, spec: dict, request: dict) -> ModelFacts:
    """Embedding size, hidden states, rate and event hop of a registry model (its stand-in
    sizes for a stand-in; catalog/checkpoints.yaml for the real SSL checkpoints). Sources:
    CREPE's embedding is conv5 flattened, 64 x capacity multiplier (2048 for full:
    hear-baseline hearbaseline/torchcrepe.py); PaSST mode all = 527 logits + features
    (1295 for PaSST-S: hear21passt wrapper.py); wav2vec2/HuBERT: a 320-sample hop at 16 kHz."""
    options, module = spec.get("options", {}), spec["module"]
    if module == "ssl":
        if "standin" in spec:
            dim, states = spec["standin"].get("hidden_size", 32), spec["standin"].get("num_hidden_layers", 4) + 1
        else:
            from hearflow.models.standin import checkpoint_facts

            facts = checkpoint_facts(options["checkpoint"])
            dim, states = facts["hidden_size"], facts["hidden_states"]
        rate, hop = 16000, 20.0
    elif module == "crepe":
        dim, states, rate = 64 * CREPE_MULTIPLIER[options.get("capacity", "full")], 1, 16000
        hop = float(options.get("timestamp_hop_ms", 50))
    elif module == "logmel":
        dim, states, rate = int(options.get("n_mels", 128)), 1, int(options.get("sample_rate", 32000))
        hop = float(options.get("hop_ms", 10))
    elif module == "passt":
        width = spec["standin"].get("embed_dim", 32) if "standin" in spec else 768
        mode = options.get("mode", "all")
        dim = {"all": PASST_LOGITS + width, "logits": PASST_LOGITS}.get(mode, width)
        states, rate, hop = 1, 32000, float(options.get("timestamp_hop_ms", 50))
    else:
        raise ValueError(f"{name}: the planner knows no module {module!r}")
    return ModelFacts(
        name,
        rate,
        dim,
        states,
        hop,
        request.get("gflop_per_audio_second"),
        request.get("audio_seconds_per_gpu_second"),
        request,
    )


def clip_frames(seconds: float, m: ModelFacts) -> int:
    """Frames of one event clip: wav2vec2/HuBERT a 400-sample window every 320 samples at
    16 kHz; the others one frame every hop from 0 to the clip's end."""
    if m.event_hop_ms == 20.0 and m.rate == 16000:
        return max(1, (round(seconds * 16000) - 400) // 320 + 1)
    return int(round(seconds * m.rate) / (m.rate * m.event_hop_ms / 1000)) + 1


def event_frames(shape: TaskShape, m: ModelFacts) -> int:
    return sum(n * clip_frames(d, m) for d, n in shape.pieces)


def view_bytes(shape: TaskShape, dim: int, frames: int | None, hop_ms: float = 0.0) -> int:
    """One heareval embedding folder: the task's label files (copied in), per split raw
    float32 embeddings, "[N, D]" dimensions, pickled target labels (~3 bytes per row and per
    label in it) and, for event tasks, [["name", ms], ...] timestamps (one line, ", ")."""
    splits = len(shape.splits)
    files = label_file_bytes(shape) + splits * 12
    if frames is None:  # scene: one row per clip
        labels = 14 * splits + shape.clips * (3 + shape.labels_per_clip * (shape.label_chars + 3))
        return int(files + shape.clips * 4 * dim + labels)
    mean_s = shape.seconds / max(1, shape.clips)
    ts_chars = len(f"{1000 * mean_s / 2:.1f}")  # a typical timestamp in ms
    active = frames * shape.events_per_clip * min(EVENT_SECONDS, mean_s) / max(mean_s, 1e-9)  # labels per frame
    labels = 14 * splits + 3 * frames + 3 * active
    return int(files + frames * (4 * dim + shape.name_chars + 8 + ts_chars) + labels)


PROVENANCE_BYTES = 1200  # a member's provenance.json
CONFIG_JSON_BYTES = 300  # a config folder's config.json


def member_bytes(shape: TaskShape, m: ModelFacts, scene_groups) -> int:
    """Every view rule `embed` writes (hearflow.embed): event tasks last and fusion frames;
    scene tasks last, fusion, each hidden state (models with more than one) and the time
    groups of embed.scene_groups."""
    if shape.event:
        return 2 * view_bytes(shape, m.dim, event_frames(shape, m)) + PROVENANCE_BYTES
    views = [m.dim, m.dim] + ([m.dim] * m.hidden_states if m.hidden_states > 1 else [])
    views += [g * m.dim for g in scene_groups for _ in ("last", "fusion")]
    return sum(view_bytes(shape, d, None) for d in views) + PROVENANCE_BYTES


def config_dim(cfg, facts: dict[str, ModelFacts]) -> int:
    """single: the member's size; avg: dim; cat and cat_blocks: dim per member."""
    if cfg.combine == "single":
        return facts[cfg.members[0].model].dim
    n = len(cfg.members)
    return cfg.dim * (n if cfg.combine in ("cat", "cat_blocks") else 1)


def config_bytes(shape: TaskShape, cfg, facts: dict[str, ModelFacts]) -> int:
    """Rule `ensemble`'s folder: event frames on the finest member's grid; scene rows of
    dim x groups (pooling {groups: N})."""
    dim = config_dim(cfg, facts)
    if shape.event:
        frames = max(event_frames(shape, facts[m.model]) for m in cfg.members)
        return view_bytes(shape, dim, frames) + CONFIG_JSON_BYTES
    groups = cfg.pooling["groups"] if isinstance(cfg.pooling, dict) else 1
    return view_bytes(shape, dim * groups, None) + CONFIG_JSON_BYTES


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
    from hearflow.config import make_plan, wide_probes
    from hearflow.targets import SYNTH_RULES, layer_probe_scores, report_figures, report_outputs

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
        "embed": n_tasks * len(plan.models),
        "ensemble": n_tasks * n_cfg,
        # wide probe jobs (suites.<suite>.probe_jobs): one per config over every task
        **({"probe_wide": n_cfg} if wide_probes(params) else {"probe": n_tasks * n_cfg}),
        "probe_layers": len(layer_probe_scores(plan)),
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
    from hearflow.config import make_plan

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
    from hearflow.resources import runtime_minutes

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
        "`python -m hearflow.plan --suite " + p["suite"] + "` (hearflow.plan; sizes in GB = 1e9 bytes).",
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
    ap = argparse.ArgumentParser(prog="python -m hearflow.plan", description=__doc__.split("\n\n")[0])
    ap.add_argument("--suite", default=None, help="a suite of params.yaml (default: its `suite`)")
    ap.add_argument("--params", type=Path, default=ROOT / "params.yaml")
    ap.add_argument("--json", type=Path, default=None, help="also write the plan as JSON here")
    ap.add_argument("--output", type=Path, default=None, help="write the Markdown here instead of stdout")
    ap.add_argument(
        "--update-readme",
        type=Path,
        default=None,
        help="replace the block between <!-- plan:SUITE --> and <!-- /plan --> of this file",
    )
    args = ap.parse_args(argv)
    from hearflow.config import load_params

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
    if args.update_readme:
        readme = args.update_readme.read_text()
        head, rest = readme.split(f"<!-- plan:{suite} -->\n", 1)
        tail = rest.split("<!-- /plan -->", 1)[1]
        args.update_readme.write_text(f"{head}<!-- plan:{suite} -->\n{text.split(chr(10), 3)[3]}<!-- /plan -->{tail}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(p, indent=1, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
