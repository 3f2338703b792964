"""Reproducible numerics: the same bytes from every job on any current x86-64 CPU.

PyTorch, MKL, oneDNN, OpenBLAS and numpy pick their kernels by the instruction set of the
CPU they run on, and split reductions by the number of threads. So the same job on an
AVX-512 machine and on an AVX2 one, or with 2 threads and with 8, rounds differently, and a
probe trained on those embeddings ends at other scores (issue 18: 39 of the demo's 91
metrics moved, by up to 5.5 points, between two 2-core machines). `numerics: reproducible`
(the default) pins every one of them to the AVX2 level, which every current x86-64 server
has, and every job's intra-op threads to `numerics.threads`:

| variable | pins | read |
|---|---|---|
| `ATEN_CPU_CAPABILITY=avx2` | PyTorch's own vectorised kernels (reductions, elementwise, softmax, norms) | at torch import |
| `MKL_CBWR=AVX2,STRICT`, `MKL_ENABLE_INSTRUCTIONS=AVX2` | MKL (torch's CPU BLAS and FFT): its conditional numerical reproducibility branch; STRICT makes gemm independent of the thread count too | at MKL's first call |
| `ONEDNN_MAX_CPU_ISA=AVX2` (and its old name `DNNL_MAX_CPU_ISA`) | oneDNN's JIT kernels (convolutions, the probe's linear layers) | at oneDNN's first call |
| `OPENBLAS_CORETYPE=Haswell` | numpy's and scipy's OpenBLAS kernels (t-SNE, PCA) | at library load |
| `NPY_DISABLE_CPU_FEATURES=X86_V4 ...` | numpy's dispatched loops capped at x86-64-v3 (AVX2) | at numpy import |
| `torch.set_num_threads` and threadpoolctl limits = `numerics.threads` | thread counts of torch's, OpenMP's and the BLAS pools | in the job (`limit_threads`, `configure_torch`) |
| `CUBLAS_WORKSPACE_CONFIG=:4096:8` | cuBLAS's deterministic mode (CUDA) | at first cuBLAS call |
| `PYTHONHASHSEED=0` | set and dict order of strings | at interpreter start |

The thread counts are pinned inside each job, not through OMP_NUM_THREADS and its kin: Snakemake
sets those to every job's own `threads`. The variables of the table are read when a library
loads, so they must be in a job's environment before its Python starts: the Snakefile (rules/common.smk) puts them into its own environment (jobs inherit it, and
`envvars:` hands them to Slurm jobs), and every job checks on start that it
got them (`check_environment`), then pins torch's threads and deterministic algorithms and records the settings
in its provenance (`configure_torch`). Which of them change results here is measured by
`benchmarks/numerics.py` (reports/benchmarks/numerics.md). `numerics: fast` leaves every
library its own choice (the fastest kernels of the CPU, the job's thread count).

Torch-free: the Snakefile imports this at plan time.
"""

from __future__ import annotations

import os
import platform
import sys

MODES = ("reproducible", "fast")
DEFAULT = {"mode": "reproducible", "threads": 2}

#: The variables of reproducible mode that do not depend on the thread count (x86-64 only).
X86_PINS = {
    "ATEN_CPU_CAPABILITY": "avx2",
    "MKL_CBWR": "AVX2,STRICT",
    "MKL_ENABLE_INSTRUCTIONS": "AVX2",
    "ONEDNN_MAX_CPU_ISA": "AVX2",
    "DNNL_MAX_CPU_ISA": "AVX2",
    "OPENBLAS_CORETYPE": "Haswell",
    "NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL AVX512_SPR",
}
COMMON_PINS = {"CUBLAS_WORKSPACE_CONFIG": ":4096:8", "PYTHONHASHSEED": "0"}
#: Every variable this module may set (the Snakefile's `envvars:` hands them to Slurm jobs).
VARIABLES = tuple(X86_PINS) + tuple(COMMON_PINS)
_MODE_VARIABLE = "HEARFLOW_NUMERICS"


class NumericsError(RuntimeError):
    """A job runs without the numerics environment its settings ask for."""


def settings(params: dict | None) -> dict:
    """`numerics` of params.yaml with defaults: {"mode", "threads"}; a bare string is a mode."""
    value = params if isinstance(params, dict) else ({"mode": params} if params else {})
    out = {**DEFAULT, **value}
    if out["mode"] not in MODES:
        raise ValueError(f"numerics.mode must be one of {list(MODES)}, got {out['mode']!r}")
    if not isinstance(out["threads"], int) or out["threads"] < 1:
        raise ValueError(f"numerics.threads must be a positive integer, got {out['threads']!r}")
    return out


def is_x86_64() -> bool:
    return platform.machine().lower() in ("x86_64", "amd64")


def cpu_flags() -> set[str]:
    """The CPU's feature flags (Linux /proc/cpuinfo; empty elsewhere)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def environment(params: dict | None) -> dict[str, str]:
    """The variables a job of this mode runs with (`fast`: none but the mode's name, so
    every library keeps its own choice, or what the user's shell sets)."""
    s = settings(params)
    if s["mode"] == "fast":
        return {_MODE_VARIABLE: "fast"}
    env = dict(COMMON_PINS)
    if is_x86_64():
        flags = cpu_flags()
        if flags and not {"avx2", "fma"} <= flags:
            raise NumericsError(
                "numerics: reproducible pins x86-64 kernels at AVX2 and FMA, which this CPU "
                "lacks; set `numerics: {mode: fast}` in params.yaml to run here"
            )
        env.update(X86_PINS)
    env[_MODE_VARIABLE] = f"reproducible:{s['threads']}"
    return env


def apply(params: dict | None, environ: dict | None = None) -> dict[str, str]:
    """Put `environment(params)` into `environ` (default os.environ) for child processes.
    Returns what a job will see of the variables."""
    environ = os.environ if environ is None else environ
    environ.update(environment(params))
    return {k: environ[k] for k in (*VARIABLES, _MODE_VARIABLE) if k in environ}


def check_environment(params: dict | None, environ: dict | None = None) -> None:
    """Raise NumericsError unless this process started with the variables of its mode (they
    take effect only when the libraries load, so setting them now would be too late)."""
    environ = os.environ if environ is None else environ
    want = environment(params)
    wrong = {k: (environ.get(k), v) for k, v in want.items() if environ.get(k) != v}
    if wrong:
        detail = ", ".join(f"{k}={got!r} (wants {v!r})" for k, (got, v) in sorted(wrong.items()))
        raise NumericsError(
            f"this job's numerics environment is not the one numerics={settings(params)} asks for: "
            f"{detail}. Jobs get it from the Snakefile (hearflow.core.numerics.apply); a job started "
            "another way must set it before Python starts"
        )


def job_settings(environ: dict | None = None) -> dict:
    """The numerics a job runs under, from the variable `apply` sets (HEARFLOW_NUMERICS);
    a process started without it (no Snakefile) runs `fast`, with the job's threads."""
    value = (os.environ if environ is None else environ).get(_MODE_VARIABLE, "fast")
    mode, _, threads = value.partition(":")
    return settings({"mode": mode, "threads": int(threads)} if threads else {"mode": mode})


def configure_torch(snakemake_threads: int | None = None, environ: dict | None = None) -> dict:
    """In a job that computes with torch, before it computes: pin torch's intra-op threads
    (`numerics.threads` in reproducible mode, else the job's), deterministic algorithms and
    cuDNN; returns `record` of it for provenance."""
    import torch

    s = job_settings(environ)
    threads = job_threads(snakemake_threads or torch.get_num_threads(), environ)
    torch.set_num_threads(threads)
    if s["mode"] == "reproducible":
        limit_threads(environ)  # the pools torch's import loaded
        # warn_only: an op without a deterministic CUDA kernel warns in the job's log
        # instead of stopping a GPU job; on the CPU every op the pipeline uses has one.
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
    return record(s, threads)


def job_threads(snakemake_threads: int, environ: dict | None = None) -> int:
    """The threads a job computes with: `numerics.threads` in reproducible mode, else the
    job's own (Snakemake's `threads`)."""
    s = job_settings(environ)
    return s["threads"] if s["mode"] == "reproducible" else max(1, int(snakemake_threads))


_LIMITS: list = []  # threadpoolctl limits in force (kept alive: they end when collected)


def limit_threads(environ: dict | None = None) -> None:
    """In reproducible mode, pin every thread pool loaded so far (OpenMP, OpenBLAS, MKL) to
    `numerics.threads` for the rest of the process; no-op in fast mode. Pools loaded later
    (sklearn's OpenMP) need `thread_limits()` around their use."""
    s = job_settings(environ)
    if s["mode"] == "reproducible":
        from threadpoolctl import threadpool_limits

        _LIMITS.append(threadpool_limits(limits=s["threads"]))


def thread_limits(environ: dict | None = None):
    """A context that pins the thread pools to `numerics.threads` in reproducible mode."""
    import contextlib

    s = job_settings(environ)
    if s["mode"] != "reproducible":
        return contextlib.nullcontext()
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=s["threads"])


def record(params: dict | None, threads: int | None = None) -> dict:
    """What provenance keeps of the numerics of a job: mode, threads and the pins, nothing
    that differs between machines (outputs must hash the same everywhere)."""
    s = settings(params)
    threads = s["threads"] if threads is None else threads
    pins = {k: v for k, v in environment(params).items() if k != _MODE_VARIABLE}
    return {"mode": s["mode"], "threads": threads, "pins": dict(sorted(pins.items()))}


def machine() -> dict:
    """Facts about this machine's numerics (for job logs, never for outputs)."""
    facts = {"machine": platform.machine(), "cpu_flags_avx512f": "avx512f" in cpu_flags()}
    if "torch" in sys.modules:
        torch = sys.modules["torch"]
        facts["torch_cpu_capability"] = torch.backends.cpu.get_cpu_capability()
        facts["torch_threads"] = torch.get_num_threads()
    return facts
