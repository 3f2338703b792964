"""Which CPU-numerics settings change results, and what reproducible mode costs.

Every case runs in a fresh Python process (the variables act only when a library loads):
one member embedding per model module on one demo task (the two stand-in SSL models,
CREPE tiny, log-mel) and a native probe on fixed embeddings (log-mel on demo_events, whose
onset FMS moved 5.5 points between two machines; the CREPE member on demo_tones). Each
is run

- in `fast` mode on this machine as it is (the reference), and with one library pushed to
  another instruction-set level or thread count, as another CPU or job size would choose:
  which of them change the output bytes is what reproducible mode has to pin;
- in `reproducible` mode with the same pushes in the caller's environment (an AVX-512
  machine's natural choice is such a push): the outputs must not move.

Also times the probe and the embeddings in both modes (same run, interleaved), and, with
`--main-job`, `snakemake --cores 2` of the whole demo from scratch in both modes, each in a
clean clone of HEAD, both at once (`--keep DIR` keeps the reproducible one's workspace).

    python benchmarks/numerics.py [--main-job [--keep DIR]]   # reports/benchmarks/numerics.{json,md}

Needs the demo's task folders and stand-in checkpoints (`snakemake --cores 2 embed_all`
or the main job builds them).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "reports" / "benchmarks"

MODELS = {  # (module, rate, load_model options), as the demo's params give them
    "hubert_standin": ("ssl", 16000, {"checkpoint": "data/models/hubert_standin", "stand_in": True}),
    "wav2vec2_standin": ("ssl", 16000, {"checkpoint": "data/models/wav2vec2_standin", "stand_in": True}),
    "crepe_tiny": ("crepe", 16000, {"capacity": "tiny", "timestamp_hop_ms": 50, "scene_hop_ms": 250}),
    "logmel": ("logmel", 32000, {"sample_rate": 32000, "n_mels": 128, "hop_ms": 10}),
}
EMBED_CASES = {
    "hubert_standin": "demo_vowels-v1-full",
    "wav2vec2_standin": "demo_vowels-v1-full",
    "crepe_tiny": "demo_vowels-v1-full",
    "logmel": "demo_events-v1-full",
}
PROBE_CASES = {
    "logmel/demo_events": ("logmel", "demo_events-v1-full"),
    "crepe_tiny/demo_tones": ("crepe_tiny", "demo_tones-v1-full"),
}
PROBE_GRID = {"hidden_dim": [256], "max_epochs": [30], "patience": [4]}  # the demo's overrides

# Pushes: what another CPU or job size would choose (fast mode lets it through).
PUSHES = {
    "none": {},
    "ATEN_CPU_CAPABILITY=default": {"ATEN_CPU_CAPABILITY": "default"},
    "MKL_CBWR=COMPATIBLE": {"MKL_CBWR": "COMPATIBLE"},
    "MKL_ENABLE_INSTRUCTIONS=SSE4_2": {"MKL_ENABLE_INSTRUCTIONS": "SSE4_2"},
    "ONEDNN_MAX_CPU_ISA=SSE41": {"ONEDNN_MAX_CPU_ISA": "SSE41", "DNNL_MAX_CPU_ISA": "SSE41"},
    "OPENBLAS_CORETYPE=Prescott": {"OPENBLAS_CORETYPE": "Prescott"},
    "NPY_DISABLE_CPU_FEATURES=X86_V3": {"NPY_DISABLE_CPU_FEATURES": "X86_V3 X86_V4"},
    "threads=1": {"_THREADS": "1"},
    "probe workers=1": {"_WORKERS": "1"},
}
# Reproducible mode: every ISA push at once (the mode must override them all), and the sizes.
ALL_ISA = {k: v for push in PUSHES.values() for k, v in push.items() if not k.startswith("_")}
REPRODUCIBLE_PUSHES = {
    "none": {},
    "every ISA push above at once": ALL_ISA,
    "threads=1": PUSHES["threads=1"],
    "probe workers=1": PUSHES["probe workers=1"],
}


def digest(path: Path) -> str:
    """sha256 of every file of an embedding folder (names and bytes) but provenance.json."""
    h = hashlib.sha256()
    for f in sorted(p for p in Path(path).rglob("*") if p.is_file() and p.name != "provenance.json"):
        h.update(f.relative_to(path).as_posix().encode() + f.read_bytes())
    return h.hexdigest()


def scores_digest(scores: dict) -> str:
    """sha256 of what a probe computed: metrics, folds and validation score."""
    text = json.dumps({k: scores[k] for k in ("metrics", "folds", "validation_score")}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


# ------------------------------------------------------------------------------ child


def child(spec: dict) -> dict:
    from hearflow.core import numerics

    threads = int(spec.get("threads", 2))
    numerics.check_environment(spec["numerics"])  # what every job does (hearflow.core.smk.run)
    numerics.limit_threads()
    numerics.configure_torch(threads)
    import torch

    start = time.perf_counter()
    if spec["kind"] == "embed":
        from hearflow.embed.job import embed_task

        module, rate, options = MODELS[spec["model"]]
        out = Path(spec["out"])
        task = spec["task"]
        embed_task(ROOT / f"data/tasks/{rate}/{task}", out, module=module, options=options, progress=False)
        result = {"digest": digest(out)[:16]}
    else:
        from hearflow.probe import probe_task

        scores = probe_task(
            Path(spec["emb_dir"]),
            grid=PROBE_GRID,
            max_grid_points=2,
            seed=42,
            device="cpu",
            workers=spec.get("workers"),
        )
        result = {"digest": scores_digest(scores)[:16], "metrics": scores["metrics"]}
    result.update(
        seconds=round(time.perf_counter() - start, 3),
        torch_threads=torch.get_num_threads(),
        capability=torch.backends.cpu.get_cpu_capability(),
    )
    return result


def run_child(spec: dict, env: dict) -> dict:
    proc = subprocess.run(
        [sys.executable, __file__, "--child", json.dumps(spec)], cwd=ROOT, env=env, capture_output=True, text=True
    )
    if proc.returncode:
        raise RuntimeError(f"case {spec} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------ parent


def case_env(mode: str, push: dict) -> tuple[dict, dict]:
    from hearflow.core import numerics

    env = {k: v for k, v in os.environ.items() if k not in numerics.VARIABLES}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT / "src"), os.environ.get("PYTHONPATH")) if p)
    env.update({k: v for k, v in push.items() if not k.startswith("_")})
    params = {"mode": mode, "threads": 2}
    numerics.apply(params, env)  # what the Snakefile does: reproducible overrides the pushes
    threads = push.get("_THREADS", "2")  # Snakemake sets these to each job's threads
    env.update({k: threads for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")})
    extra = {"threads": int(push.get("_THREADS", 2))}
    if "_WORKERS" in push:
        extra["workers"] = int(push["_WORKERS"])
    return env, dict(numerics=params, **extra)


def measure(tmp: Path, only: set[str] | None = None) -> list:
    rows = []
    for mode in ("fast", "reproducible"):
        for push_name, push in (PUSHES if mode == "fast" else REPRODUCIBLE_PUSHES).items():
            if only is not None and push_name not in only:
                continue
            env, extra = case_env(mode, push)
            for case, task in EMBED_CASES.items():
                if "_WORKERS" in push:
                    continue
                out = tmp / f"{mode}-{len(rows)}"
                r = run_child(dict(kind="embed", model=case, task=task, out=str(out), **extra), env)
                shutil.rmtree(out, ignore_errors=True)
                rows.append(dict(mode=mode, push=push_name, kind="embed", case=case, **r))
                print(rows[-1], file=sys.stderr)
            for case, (model, task) in PROBE_CASES.items():
                emb = tmp / "fixed" / model / task
                r = run_child(dict(kind="probe", emb_dir=str(emb / "last"), **extra), env)
                rows.append(dict(mode=mode, push=push_name, kind="probe", case=case, **r))
                print(rows[-1], file=sys.stderr)
    return rows


def timing(tmp: Path, repeats: int) -> list[dict]:
    """Seconds of each case in both modes, interleaved (fast, reproducible, fast, ...) so a
    busy machine slows both alike; the median of `repeats` per case and mode."""
    import statistics

    seconds: dict = {}
    for _ in range(repeats):
        for case, task in [*EMBED_CASES.items(), *PROBE_CASES.items()]:
            for mode in ("fast", "reproducible"):
                env, extra = case_env(mode, {})
                if case in EMBED_CASES:
                    out = tmp / f"time-{mode}"
                    spec = dict(kind="embed", model=case, task=task, out=str(out), **extra)
                else:
                    spec = dict(kind="probe", emb_dir=str(tmp / "fixed" / task[0] / task[1] / "last"), **extra)
                seconds.setdefault((case, mode), []).append(run_child(spec, env)["seconds"])
                shutil.rmtree(tmp / f"time-{mode}", ignore_errors=True)
    return [{"case": c, "mode": m, "seconds": statistics.median(v), "runs": v} for (c, m), v in seconds.items()]


def fixed_embeddings(tmp: Path) -> None:
    """The embeddings every probe case reads: made once, in fast mode, here."""
    env, extra = case_env("fast", {})
    for model, task in PROBE_CASES.values():
        run_child(dict(kind="embed", model=model, task=task, out=str(tmp / "fixed" / model / task), **extra), env)


def main_job(tmp: Path, keep: Path | None = None) -> dict:
    """`snakemake --cores 2` of the demo from scratch in both modes, each in a clean clone
    of HEAD, both at once (so whatever else loads the machine slows both alike)."""
    runs = {}
    for mode in ("fast", "reproducible"):
        work = tmp / f"main-{mode}"
        subprocess.run(["git", "clone", "-q", str(ROOT), str(work)], check=True)
        (work / "numerics.yaml").write_text(json.dumps({"numerics": {"mode": mode, "threads": 2}}))
        env = {k: v for k, v in os.environ.items() if k not in ("HEARFLOW_NUMERICS",)}
        env["PYTHONPATH"] = str(work / "src")
        log = open(tmp / f"main-{mode}.log", "w")
        cmd = [sys.executable, "-m", "snakemake", "--cores", "2", "--configfile", "numerics.yaml"]
        runs[mode] = (work, log, time.perf_counter(), subprocess.Popen(cmd, cwd=work, env=env, stdout=log, stderr=log))
    times = {"concurrent": True}
    for mode, (work, log, start, proc) in runs.items():
        if proc.wait():
            raise RuntimeError(f"main job ({mode}) failed: see {log.name}")
        times[mode] = round(time.perf_counter() - start, 1)
        log.close()
        times[f"{mode}_metrics_sha256"] = hashlib.sha256((work / "reports" / "metrics.json").read_bytes()).hexdigest()
    for mode, (work, *_rest) in runs.items():
        if keep is not None and mode == "reproducible":
            shutil.rmtree(keep, ignore_errors=True)
            shutil.move(work, keep)
        else:
            shutil.rmtree(work)
    return times


def report(rows: list, times: list, main: dict | None) -> str:
    ref = {(r["kind"], r["case"]): r["digest"] for r in rows if r["mode"] == "fast" and r["push"] == "none"}
    ref_row = next(r for r in rows if r["mode"] == "fast" and r["push"] == "none")
    lines = [
        "# Reproducible numerics: which settings move results, and the mode's cost",
        "",
        f"`python benchmarks/numerics.py` on {platform.machine()}, {os.cpu_count()} cores, "
        f"{_cpu_model()}; torch capability here: {ref_row['capability']}. A cell is `same` when the "
        "output bytes equal the fast-mode reference (no push), else `DIFFERS`. Embeddings: every "
        "file of the member folder but provenance.json; probe: metrics, folds and validation score.",
        "",
    ]
    cases = list(dict.fromkeys((r["kind"], r["case"]) for r in rows))
    for mode in ("fast", "reproducible"):
        lines += [
            f"## {mode} mode",
            "",
            "| push | " + " | ".join(f"{k} {c}" for k, c in cases) + " |",
            "|---" * (len(cases) + 1) + "|",
        ]
        for push in PUSHES if mode == "fast" else REPRODUCIBLE_PUSHES:
            cells = []
            for kind, case in cases:
                r = next(
                    (r for r in rows if (r["mode"], r["push"], r["kind"], r["case"]) == (mode, push, kind, case)), None
                )
                cells.append("-" if r is None else ("same" if r["digest"] == ref[kind, case] else "DIFFERS"))
            lines.append(f"| {push} | " + " | ".join(cells) + " |")
        lines.append("")
    lines += [
        "## Time (seconds in the job, median of interleaved runs, same run)",
        "",
        "| case | fast | reproducible | ratio |",
        "|---|---|---|---|",
    ]
    for case in dict.fromkeys(t["case"] for t in times):
        t = {r["mode"]: r["seconds"] for r in times if r["case"] == case}
        lines.append(f"| {case} | {t['fast']:.2f} | {t['reproducible']:.2f} | {t['reproducible'] / t['fast']:.2f} |")
    if main:
        lines += [
            "",
            "## Demo from scratch, `snakemake --cores 2` (seconds; both modes at once, each in a clean clone)",
            "",
            f"fast {main['fast']}, reproducible {main['reproducible']}, ratio "
            f"{main['reproducible'] / main['fast']:.2f}; metrics.json sha256 fast {main['fast_metrics_sha256']}, "
            f"reproducible {main['reproducible_metrics_sha256']}.",
        ]
    return "\n".join(lines) + "\n"


def _cpu_model() -> str:
    try:
        return next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))  # noqa: E741
    except (OSError, StopIteration):
        return platform.processor() or "unknown CPU"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--main-job", action="store_true", help="also time the whole demo in both modes")
    ap.add_argument("--repeats", type=int, default=3, help="timed runs per case and mode")
    ap.add_argument("--keep", type=Path, help="with --main-job: move the reproducible run's clone here")
    ap.add_argument("--rows-from", type=Path, help="reuse the push rows of an earlier run (JSON list)")
    ap.add_argument(
        "--pushes", help="with --rows-from: comma-separated pushes to measure again (they replace those rows)"
    )
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return
    with tempfile.TemporaryDirectory() as tmp:
        fixed_embeddings(Path(tmp))
        if args.rows_from:
            again = set(args.pushes.split(",")) if args.pushes else set()
            rows = [r for r in json.loads(args.rows_from.read_text()) if r["push"] not in again]
            rows += measure(Path(tmp), again) if again else []
            for r in rows:
                r.setdefault("measured", "earlier run" if r["push"] not in again else "this run")
        else:
            rows = measure(Path(tmp))
        times = timing(Path(tmp), args.repeats)
        main_times = main_job(Path(tmp), args.keep) if args.main_job else None
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "numerics.json").write_text(
        json.dumps({"rows": rows, "times": times, "main_job": main_times}, indent=1) + "\n"
    )
    (OUT / "numerics.md").write_text(report(rows, times, main_times))
    print((OUT / "numerics.md").read_text())


if __name__ == "__main__":
    main()
