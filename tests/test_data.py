"""Archive fetching: file:// and HTTP with resume, checksum lock, safe extraction."""

from __future__ import annotations

import http.server
import io
import json
import tarfile
import threading
from pathlib import Path

import pytest

from hearflow.data import archives as data
from tests.conftest import make_task


def _pack(task_root: Path, archive: Path, extra: list[tarfile.TarInfo] = ()) -> Path:
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(task_root, arcname=f"tasks/{task_root.name}")
        for info in extra:
            tar.addfile(info, io.BytesIO(b"x" * info.size) if info.isfile() else None)
    return archive


@pytest.fixture()
def archive(tmp_path) -> Path:
    task = make_task(tmp_path / "src", name="toy-v1-full", sample_rate=48000)
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    return _pack(task.root, mirror / data.archive_name("toy-v1-full"))


def test_archive_url_from_folder_or_url():
    assert data.archive_url("https://zenodo.org/records/6332517/files/", "esc50-v2.0.0-full") == (
        "https://zenodo.org/records/6332517/files/hear2021-esc50-v2.0.0-full-48000.tar.gz"
    )
    assert data.archive_url("/srv/hear", "x").startswith("file:///srv/hear/hear2021-x-48000")


def test_file_fetch_records_then_verifies_the_checksum(archive, tmp_path):
    lock = data.ChecksumLock(tmp_path / "checksums.lock")
    dest = tmp_path / "dl" / archive.name
    data.fetch(archive.as_uri(), dest, lock=lock, progress=False)
    assert dest.read_bytes() == archive.read_bytes()
    assert json.loads(lock.path.read_text()) == {archive.name: data.digests(archive)[0]}
    dest.unlink()
    data.fetch(archive.as_uri(), dest, lock=lock, progress=False)  # verified against the lock


def test_tampered_archive_is_refused_and_nothing_is_left(archive, tmp_path):
    lock = data.ChecksumLock(tmp_path / "checksums.lock")
    dest = tmp_path / "dl" / archive.name
    data.fetch(archive.as_uri(), dest, lock=lock, progress=False)
    expected = data.digests(archive)[0]
    dest.unlink()
    with open(archive, "ab") as f:
        f.write(b"tampered")
    with pytest.raises(data.ChecksumError) as err:
        data.fetch(archive.as_uri(), dest, lock=lock, progress=False)
    assert expected in str(err.value) and data.digests(archive)[0] in str(err.value)
    assert not dest.exists() and not dest.with_name(dest.name + ".part").exists()


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Serves a folder with Range support; the first response is cut after `cut` bytes."""

    cut: int | None = None
    served: list[int] = []

    def log_message(self, *args):
        pass

    def do_GET(self):
        path = Path(self.translate_path(self.path))
        body = path.read_bytes()
        start = 0
        rng = self.headers.get("Range")
        if rng:
            start = int(rng.split("=")[1].split("-")[0])
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        part = body[start:]
        self.send_header("Content-Length", str(len(part)))
        self.end_headers()
        if _Handler.cut is not None:
            part, _Handler.cut = part[: _Handler.cut], None
            self.wfile.write(part)
            _Handler.served.append(len(part))
            self.connection.shutdown(2)  # drop the connection midway
            return
        self.wfile.write(part)
        _Handler.served.append(len(part))


@pytest.fixture()
def served_url(archive):
    """URL of `archive` on an HTTP server on 127.0.0.1 (see _Handler), shut down afterwards."""
    handler = lambda *a, **k: _Handler(*a, directory=str(archive.parent), **k)  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/{archive.name}"
    server.shutdown()


def test_http_download_resumes_after_a_cut(archive, served_url, tmp_path):
    size = archive.stat().st_size
    _Handler.cut, _Handler.served = size // 3, []
    dest = tmp_path / "dl" / archive.name
    data.fetch(served_url, dest, lock=data.ChecksumLock(tmp_path / "lock"), backoff=0.01, progress=False)
    assert dest.read_bytes() == archive.read_bytes()
    assert _Handler.served[0] == size // 3
    assert _Handler.served[1] == size - size // 3  # the retry fetched only the rest


def test_extract_checks_layout(archive, tmp_path):
    out = data.extract_task(archive, tmp_path / "tasks" / "toy-v1-full", "toy-v1-full")
    assert (out / "task_metadata.json").is_file() and (out / "48000" / "train" / "000.wav").is_file()


@pytest.mark.parametrize(
    "member, kind",
    [
        ("tasks/toy-v1-full/../../evil.txt", tarfile.REGTYPE),
        ("/etc/evil", tarfile.REGTYPE),
        ("tasks/toy-v1-full/link", tarfile.SYMTYPE),
    ],
)
def test_unsafe_members_are_refused(tmp_path, member, kind):
    task = make_task(tmp_path / "src", name="toy-v1-full", sample_rate=48000)
    info = tarfile.TarInfo(member)
    info.type = kind
    if kind == tarfile.SYMTYPE:
        info.linkname = "/etc/passwd"
    else:
        info.size = 3
    archive = _pack(task.root, tmp_path / "bad.tar.gz", [info])
    with pytest.raises(data.UnsafeArchiveError):
        data.extract_task(archive, tmp_path / "out", "toy-v1-full")
    assert not (tmp_path / "out").exists() and not (tmp_path / "evil.txt").exists()


def test_published_md5_is_checked(archive, tmp_path):
    dest = tmp_path / "dl" / archive.name
    with pytest.raises(data.ChecksumError, match="md5 .* expected 0{32}"):
        data.fetch(archive.as_uri(), dest, expected_md5="0" * 32, progress=False)
    assert not dest.exists()
    data.fetch(archive.as_uri(), dest, expected_md5=data.digests(archive)[1], progress=False)
    assert dest.is_file()


def test_a_failed_fetch_leaves_a_partial_file_that_the_next_run_resumes(archive, served_url, tmp_path):
    size = archive.stat().st_size
    dest = tmp_path / "dl" / archive.name
    _Handler.cut, _Handler.served = size // 2, []
    with pytest.raises(RuntimeError, match="download failed after 1 attempts"):
        data.fetch(served_url, dest, retries=0, progress=False)
    assert not dest.exists() and dest.with_name(dest.name + ".part").stat().st_size == size // 2
    data.fetch(served_url, dest, retries=0, progress=False)  # the rerun: a Range request for the rest
    assert _Handler.served == [size // 2, size - size // 2]
    assert dest.read_bytes() == archive.read_bytes()
