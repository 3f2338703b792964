""".ci/check_committed_results.py on a small git repository: the committed results, and a CPU
vendor's own record (reports/numerics/vendors.json) where one exists."""

from __future__ import annotations

import importlib.util
import json
import subprocess

import pytest
import yaml

from tests.conftest import ROOT

spec = importlib.util.spec_from_file_location("check_committed_results", ROOT / ".ci" / "check_committed_results.py")
check = importlib.util.module_from_spec(spec)
spec.loader.exec_module(check)


def _lock(digest: str) -> dict:
    return {
        "stages": {
            "embed-crepe": {"outs": [{"path": "results/members/crepe/t", "md5": digest}]},
            "report": {"outs": [{"path": "reports/metrics.json", "md5": "m"}]},
        }
    }


def _write(repo, metrics: dict, digest: str) -> None:
    (repo / "reports").mkdir(exist_ok=True)
    (repo / "reports" / "metrics.json").write_text(json.dumps(metrics))
    (repo / "dvc.lock").write_text(yaml.safe_dump(_lock(digest)))


@pytest.fixture()
def repo(tmp_path):
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(tmp_path)]
    subprocess.run([*git, "init", "-q"], check=True)
    _write(tmp_path, {"crepe": {"t": {"acc": 0.5}}}, "aaa.dir")
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "results"], check=True)
    return tmp_path


def test_the_committed_results_pass_and_a_changed_value_fails(repo, monkeypatch, capsys):
    monkeypatch.setenv("HEARFLOW_CPU_VENDOR", "GenuineIntel")
    assert check.main([], root=repo) == 0
    _write(repo, {"crepe": {"t": {"acc": 0.51}}}, "aaa.dir")
    assert check.main([], root=repo) == 1
    assert "crepe / t / acc: committed 0.5, now 0.51" in capsys.readouterr().err
    _write(repo, {"crepe": {"t": {"acc": 0.5}}}, "bbb.dir")
    assert check.main([], root=repo) == 1
    assert "results/members/crepe/t: committed aaa.dir, now bbb.dir" in capsys.readouterr().err


def test_a_vendor_with_a_record_is_held_to_it(repo, monkeypatch, capsys):
    """Another vendor's regeneration (other values) recorded: that vendor passes on its own
    values and fails on the committed ones; the committing vendor still checks the commit."""
    _write(repo, {"crepe": {"t": {"acc": 0.47}}}, "amd.dir")
    monkeypatch.setenv("HEARFLOW_CPU_VENDOR", "AuthenticAMD")
    assert check.main(["--record", "--source", "a test"], root=repo) == 0
    record = json.loads((repo / check.RECORD).read_text())
    assert record["AuthenticAMD"]["embeddings"] == {"results/members/crepe/t": "amd.dir"}
    assert check.main([], root=repo) == 0
    _write(repo, {"crepe": {"t": {"acc": 0.5}}}, "aaa.dir")  # the committed values
    assert check.main([], root=repo) == 1
    assert "AuthenticAMD record" in capsys.readouterr().err
    monkeypatch.setenv("HEARFLOW_CPU_VENDOR", "GenuineIntel")
    assert check.main([], root=repo) == 0


def test_the_committed_record_covers_every_embedding_of_the_lock():
    """reports/numerics/vendors.json holds, per vendor, a digest for each embedding output of
    the committed dvc.lock (72 on the demo) and the metrics hash."""
    record = json.loads((ROOT / check.RECORD).read_text())
    lock = check.embedding_digests(yaml.safe_load((ROOT / "dvc.lock").read_text()))
    assert record and len(lock) == 72
    for vendor, entry in record.items():
        assert set(entry["embeddings"]) == set(lock), vendor
        assert len(entry["metrics_sha256"]) == 64 and entry["source"], vendor
