"""Shared fixtures: tiny HEAR tasks, stand-in checkpoints, the repository root."""

from __future__ import annotations

import http.server
import json
import os
import shutil
import subprocess
import threading
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from hearflow.core import hear
from hearflow.core.audio import write_clip

ROOT = Path(__file__).resolve().parents[1]


def make_task(
    root: Path,
    *,
    name: str = "toy-v1-full",
    sample_rate: int = 16000,
    embedding_type: str = "scene",
    durations: dict[str, list[float]] | None = None,
    seed: int = 0,
) -> hear.Task:
    """A small HEAR task of sine tones (two classes) at `sample_rate`; events for event tasks."""
    rng = np.random.default_rng(seed)
    durations = durations or {"train": [1.0] * 4, "valid": [1.0] * 2, "test": [1.0] * 2}
    task_dir = root / name
    metadata = {
        "task_name": name,
        "version": "v1",
        "embedding_type": embedding_type,
        "prediction_type": "multiclass" if embedding_type == "scene" else "multilabel",
        "split_mode": "trainvaltest",
        "sample_duration": None,
        "evaluation": ["top1_acc"] if embedding_type == "scene" else ["event_onset_200ms_fms"],
        "splits": list(durations),
    }
    task_dir.mkdir(parents=True)
    (task_dir / "task_metadata.json").write_text(json.dumps(metadata))
    hear.write_vocabulary(task_dir / "labelvocabulary.csv", ["low", "high"])
    for split, lengths in durations.items():
        labels = {}
        for i, dur in enumerate(lengths):
            fname = f"{i:03d}.wav"
            label = ["low", "high"][i % 2]
            t = np.arange(int(dur * sample_rate)) / sample_rate
            f0 = 220.0 if label == "low" else 880.0
            audio = 0.3 * np.sin(2 * np.pi * f0 * t) + 0.01 * rng.standard_normal(t.size)
            write_clip(task_dir / str(sample_rate) / split / fname, audio.astype(np.float32), sample_rate)
            if embedding_type == "scene":
                labels[fname] = [label]
            else:
                labels[fname] = [{"label": label, "start": 100.0, "end": 1000.0 * dur - 100.0}]
        (task_dir / f"{split}.json").write_text(json.dumps(labels))
    return hear.Task.load(task_dir)


@pytest.fixture(scope="session")
def standins(tmp_path_factory) -> dict[str, Path]:
    """Tiny seeded wav2vec2 and HuBERT checkpoints written with save_pretrained."""
    from hearflow.embed.models.standin import build_standin

    root = tmp_path_factory.mktemp("standins")
    return {
        arch: build_standin(arch, root / arch, seed=7, hidden_size=32, num_hidden_layers=3, conv_dim=16)
        for arch in ("wav2vec2", "hubert")
    }


@pytest.fixture(scope="session")
def passt_weights(tmp_path_factory) -> Path:
    """A randomly initialised small PaSST (PASST_TINY sizes) saved as a weights file."""
    import torch

    from hearflow.embed.models.passt import build_network

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("passt") / "passt-tiny-random.pt"
    torch.save(build_network(PASST_TINY).net.state_dict(), path)
    return path


PASST_TINY = {"embed_dim": 64, "depth": 2, "num_heads": 2}  # PaSST-S layout, a fraction of the width


def copy_checkout(dest: Path, *, exclude: tuple[str, ...] = ()) -> Path:
    """What a fresh clone holds: the checkout's tracked and not-ignored files, copied to `dest`
    (never .venv*, data/, results/ or other ignored artefacts, which can be many GB).
    `exclude` drops paths starting with any of these prefixes (e.g. "dvc.lock", ".dvc/")."""
    import shutil
    import subprocess

    listed = (
        subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
        .stdout.decode()
        .split("\0")
    )
    for rel in filter(None, listed):
        src = ROOT / rel
        if src.is_symlink() and not rel.startswith(exclude):  # e.g. the `slurm` profile link
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            os.symlink(os.readlink(src), dest / rel)
            continue
        if rel.startswith(exclude) or not src.is_file():
            continue  # deleted in the working tree, or excluded
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, target)
    return dest


@pytest.fixture(scope="session")
def reduced_local_run(tmp_path_factory) -> Path:
    """The reduced demo (tests/test_workflow.py: REDUCED) run once with `snakemake --cores 2`
    in a clean copy of the checkout (tests/test_workflow.py's end-to-end test)."""
    import yaml

    from tests.test_workflow import REDUCED, _copy_repo, _snakemake

    repo = _copy_repo(tmp_path_factory.mktemp("reduced") / "repo")
    (repo / "reduced.yaml").write_text(yaml.safe_dump(REDUCED))
    _snakemake(repo, "--cores", "2", "--configfile", "reduced.yaml")
    return repo


@pytest.fixture(scope="session")
def small_demo_built(tmp_path_factory):
    """The small demo (tests/test_dvc.py SMALL: two configs on a scene and an event task, every
    phase) reproduced once by `dvc repro` in a git repository, its results committed: the
    uninterrupted run that the DVC, Slurm and fault tests compare with. Returns (repo, the
    `dvc repro` result)."""
    import time

    from tests.test_dvc import _dvc, _git, _make_repo, _ran

    repo = _make_repo(tmp_path_factory.mktemp("dvc") / "repo")
    start = time.monotonic()
    first = _dvc(repo, "repro")
    print(f"first dvc repro: {time.monotonic() - start:.0f} s, {len(_ran(first))} stages")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "reproduced")
    return repo, first


@pytest.fixture(scope="module")
def one_torch_thread():
    """The probes of a module are tiny: thread hand-offs would cost more than the maths."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@contextmanager
def serve_folder(folder: Path):
    """Serve `folder` over HTTP on 127.0.0.1 from a thread (stopped on exit): yields the base
    URL and the list of requested file names, filled as requests arrive."""
    requested: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            requested.append(self.path.rsplit("/", 1)[-1])
            super().do_GET()

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), lambda *a, **k: Handler(*a, directory=str(folder), **k))
    server.daemon_threads = True
    server.timeout = 5
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", requested
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
        assert not thread.is_alive()


# --- headless Chromium (Debian's `chromium`; .ci/run installs it and sets HEARFLOW_REQUIRE_CHROMIUM=1)

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--enable-logging=stderr",
    "--v=0",
]


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def chromium_render(html: Path, workdir: Path, *, size=(1400, 4000)) -> tuple[str, Path, str]:
    """(the DOM after load, a screenshot, Chromium's log) of `html` in headless Chromium."""
    browser = _chromium()
    png = workdir / "screenshot.png"
    common = [browser, *CHROMIUM_FLAGS, f"--user-data-dir={workdir / 'profile'}"]
    shot = subprocess.run(
        [*common, f"--screenshot={png}", f"--window-size={size[0]},{size[1]}", html.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    )
    dom = subprocess.run([*common, "--dump-dom", html.as_uri()], capture_output=True, text=True, timeout=120)
    assert shot.returncode == 0 and dom.returncode == 0, shot.stderr[-2000:] + dom.stderr[-2000:]
    return dom.stdout, png, shot.stderr + dom.stderr


def console_errors(log: str) -> list[str]:
    return [line for line in log.splitlines() if ":CONSOLE" in line or "Uncaught" in line]


@pytest.fixture()
def chromium():
    if _chromium() is None:
        if os.environ.get("HEARFLOW_REQUIRE_CHROMIUM") == "1":
            pytest.fail(
                "chromium is required here (HEARFLOW_REQUIRE_CHROMIUM=1) but not installed: apt-get install chromium"
            )
        pytest.skip("chromium not installed (Debian: apt-get install chromium); CI installs it and requires it")
