""".ci/run's disk guard (.ci/disk_check): CI stops before installing anything when the disk
cannot hold it.

A CI run died at stop 38 with pip's "No space left on device" 45 s into bootstrap.sh: the
machine's disk was full of old clones. The guard says so up front and names the folder.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _disk_check(need_gb: int) -> subprocess.CompletedProcess:
    env = dict(os.environ, HEARFLOW_CI_DISK_GB=str(need_gb))
    return subprocess.run(["bash", str(ROOT / ".ci" / "disk_check")], env=env, capture_output=True, text=True)


def test_the_check_fails_and_names_the_folder_when_the_disk_is_too_small():
    res = _disk_check(10**7)  # 10 PB: no machine has it free
    assert res.returncode == 1
    assert f"{ROOT} has" in res.stderr and "CI needs 10000000 GB" in res.stderr
    assert "free space there" in res.stderr


def test_the_check_passes_with_room_and_says_how_much():
    res = _disk_check(0)
    assert res.returncode == 0, res.stderr
    assert f"{ROOT}: " in res.stdout and "GB free (need 0)" in res.stdout


def test_ci_runs_the_check_before_anything_installs():
    text = (ROOT / ".ci" / "run").read_text()
    assert text.index('part "disk check" bash .ci/disk_check') < text.index('part "apt" apt_install')
