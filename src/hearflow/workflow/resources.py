"""What each job asks a cluster for, from params.yaml `resources` (see profiles/slurm).

Embedding jobs are sized by their model (`resources.embed.<model>`: threads, memory, GPU),
every other rule with a script by its own entry (`resources.jobs.<rule>`; which rules those
are, the rule registry says: `hearflow.workflow.rules.job_rules()`); runtimes of jobs that read
audio are estimated from the task's audio duration; on a retry, memory and runtime are
multiplied by Snakemake's attempt number. Imports nothing heavy (Snakemake evaluates these
while scheduling).
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path

from hearflow.core.hear import ARCHIVE_RATE

WAV_HEADER_BYTES = 44


def audio_seconds(path: str | Path) -> float:
    """Total duration of the audio of a HEAR task directory (<task>/<rate>/<split>/*.wav)
    or of a task archive (`hear2021-<task>-<rate>.tar.gz`).

    Estimated from sizes, for 16-bit mono PCM as the HEAR archives and our resampler write
    it (such audio barely compresses, so an archive's size stands for its WAVs at the rate
    its name ends with): no file is opened, so tasks with 50k clips take well under a second."""
    root = Path(path)
    if root.is_file():
        rate = re.search(r"-(\d+)\.tar\.gz$", root.name)
        return root.stat().st_size / (2 * (int(rate.group(1)) if rate else ARCHIVE_RATE))
    total = 0.0
    for rate_dir in os.scandir(root):
        if not (rate_dir.is_dir() and rate_dir.name.isdigit()):
            continue
        bytes_per_second = 2 * int(rate_dir.name)
        for split in os.scandir(rate_dir.path):
            if not split.is_dir():
                continue
            for f in os.scandir(split.path):
                if f.name.endswith(".wav"):
                    total += max(0, f.stat().st_size - WAV_HEADER_BYTES) / bytes_per_second
    return total


def request(section: dict, key: str) -> dict:
    """One job kind's settings: `section[key]` over `section["default"]`."""
    return {**section["default"], **section.get(key, {})}


def runtime_minutes(spec: dict, audio_s: float | None, attempt: int, min_runtime: int) -> int:
    """Wall-time request in minutes: fixed (`runtime`) or from the audio duration
    (`minutes_per_audio_hour`), at least `min_runtime`, times the attempt number."""
    if "minutes_per_audio_hour" in spec and audio_s is not None:
        minutes = audio_s / 3600 * spec["minutes_per_audio_hour"]
    else:
        minutes = spec.get("runtime", min_runtime)
    return max(min_runtime, math.ceil(minutes)) * max(1, attempt)


def mem_mb(spec: dict, attempt: int) -> int:
    """Memory request in MB, grown with the attempt number (a job killed for memory gets more)."""
    return int(spec["mem_mb"]) * max(1, attempt)
