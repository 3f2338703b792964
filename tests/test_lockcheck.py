"""hearflow.workflow.lockcheck (CI's lock check) on a small real DVC repository: passes on a lock that
`dvc repro` wrote, fails naming the file or key once code, params or a command change after it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

from hearflow.workflow.lockcheck import main, stale_stages
from tests.conftest import ROOT


def _run(repo: Path, *cmd: str) -> None:
    subprocess.run(cmd, cwd=repo, check=True, capture_output=True)


def _repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    _run(repo, "git", "init", "-q")
    _run(repo, sys.executable, "-m", "dvc", "init", "-q")
    (repo / "make.py").write_text("import sys; open(sys.argv[1], 'w').write('x')\n")
    (repo / "params.yaml").write_text("a: 1\nb: 2\n")
    (repo / ".gitignore").write_text("/out.txt\n")
    stages = {"make": {"cmd": "python make.py out.txt", "deps": ["make.py"], "params": ["a"], "outs": ["out.txt"]}}
    (repo / "dvc.yaml").write_text(yaml.safe_dump({"stages": stages}))
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    subprocess.run([sys.executable, "-m", "dvc", "repro", "-q"], cwd=repo, check=True, capture_output=True, env=env)
    _run(repo, "git", "add", "-A")
    return repo


def test_a_lock_from_dvc_repro_passes_and_a_later_edit_fails(tmp_path, capsys, monkeypatch):
    repo = _repo(tmp_path)
    (repo / "out.txt").unlink()  # a fresh clone has no outputs: that is no problem
    assert main(repo) == 0
    (repo / "make.py").write_text("import sys; open(sys.argv[1], 'w').write('y')\n")
    assert main(repo) == 1
    assert "make: make.py modified" in capsys.readouterr().err
    _run(repo, "git", "checkout", "make.py")
    (repo / "params.yaml").write_text("a: 3\nb: 2\n")
    assert main(repo) == 1
    assert "make: params params.yaml:a modified" in capsys.readouterr().err
    (repo / "params.yaml").write_text("a: 1\nb: 5\n")  # a key no stage reads
    assert main(repo) == 0


def test_stale_stages_reads_dvc_status_json():
    """The shapes of `dvc status --json` (dvc 3.67.1, seen on this repository's fresh clone):
    missing data is no problem, a tracked file, a params key or the command is."""
    status = {
        "embed": [
            {"changed deps": {"data/tasks/16000/x": "deleted"}},
            {"changed outs": {"results/m/x": "not in cache"}},
        ],
        "report": [{"changed deps": {"rules/report.smk": "modified", "params.yaml": {"report.tables": "modified"}}}],
        "probe": ["changed command"],
    }
    assert stale_stages(status, {"rules/report.smk"}) == [
        "report: rules/report.smk modified",
        "report: params params.yaml:report.tables modified",
        "probe: changed command",
    ]


def test_this_checkout_s_lock_is_checked_by_ci():
    """.ci/run runs the check in the fresh clone before the main job."""
    assert "python -m hearflow.workflow.lockcheck" in (ROOT / ".ci" / "run").read_text()
