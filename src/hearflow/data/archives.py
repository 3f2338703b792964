"""Fetching, verifying and unpacking HEAR task archives.

    url = archive_url("https://zenodo.org/records/6332517/files", "esc50-v2.0.0-full")
    fetch(url, Path("data/archives/hear2021-esc50-v2.0.0-full-48000.tar.gz"), lock=ChecksumLock(Path("checksums/hear2021.lock")))
    extract_task(archive, Path("data/tasks/48000/esc50-v2.0.0-full"), "esc50-v2.0.0-full")

An archive holds one sample rate: `hear2021-<task>-<rate>.tar.gz` unpacks to
`tasks/<task>/` with the metadata, vocabulary and label files and `<rate>/<split>/*.wav`.
The public ones are 48 kHz; upstream also has 16000/22050/32000/44100 Hz archives
(requester-pays buckets), which a suite may list in `archive_rates` to skip resampling.

Downloads go to `<dest>.part`, resume with HTTP Range requests after an interruption, retry
with exponential backoff, and are renamed onto `dest` only once their sha256 is verified
against the committed lock file (the first fetch of an archive records it there).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import shutil
import tarfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zlib
from pathlib import Path

from hearflow.core import hear
from hearflow.core.hear import ARCHIVE_RATE
from hearflow.core.io import atomic_path

log = logging.getLogger(__name__)

CHUNK = 1 << 20


class ChecksumError(RuntimeError):
    """An archive's digest differs from the one recorded or expected."""


class ArchiveError(RuntimeError):
    """An archive cannot be read to the end (truncated or corrupt)."""


class UnsafeArchiveError(RuntimeError):
    """An archive member would land outside its task folder."""


def archive_name(task: str, rate: int | str = ARCHIVE_RATE) -> str:
    """The archive name of a HEAR 2021 task at `rate` Hz (the public ones: 48 kHz); either
    may be a wildcard pattern ("{task}", "{arate}")."""
    return f"hear2021-{task}-{rate}.tar.gz"


def archive_url(mirror: str, task: str, rate: int = ARCHIVE_RATE) -> str:
    """URL of a task's archive under `mirror`: an http(s)/file URL or a local folder path."""
    if "://" not in mirror:
        mirror = Path(mirror).resolve().as_uri()
    return f"{mirror.rstrip('/')}/{archive_name(task, rate)}"


def digests(path: Path) -> tuple[str, str]:
    """(sha256, md5) of a file, in one read."""
    sha, md5 = hashlib.sha256(), hashlib.md5()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            sha.update(chunk)
            md5.update(chunk)
    return sha.hexdigest(), md5.hexdigest()


class ChecksumLock:
    """A committed JSON file {archive name: sha256}, safe to update from parallel jobs."""

    def __init__(self, path: Path):
        self.path = Path(path)

    @contextlib.contextmanager
    def _locked(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_suffix(self.path.suffix + ".flock"), "w") as guard:
            fcntl.flock(guard, fcntl.LOCK_EX)
            yield

    def read(self) -> dict[str, str]:
        return json.loads(self.path.read_text()) if self.path.exists() else {}

    def verify_or_record(self, name: str, digest: str, *, where: str) -> None:
        """Raise ChecksumError if `name` is recorded with another digest; else record it."""
        with self._locked():
            entries = self.read()
            expected = entries.get(name)
            if expected is not None and expected != digest:
                raise ChecksumError(
                    f"{where}: sha256 {digest} differs from {expected} recorded in {self.path}. "
                    "The archive is corrupt or was changed upstream; delete the download and "
                    "fetch again, or, if the new archive is trusted, remove its entry from the lock file."
                )
            if expected is None:
                entries[name] = digest
                with atomic_path(self.path) as tmp:
                    tmp.write_text(json.dumps(entries, indent=2, sort_keys=True) + "\n")


def _download(url: str, part: Path, *, timeout: float, progress: bool) -> None:
    """Append the rest of `url` to `part` (a Range request when `part` already has bytes)."""
    from tqdm import tqdm

    have = part.stat().st_size if part.exists() else 0
    req = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        resp = urllib.request.urlopen(req, timeout=timeout)
    except urllib.error.HTTPError as err:
        if err.code == 416 and have:  # nothing left to fetch
            return
        raise
    with resp:
        status = getattr(resp, "status", None)
        if have and status != 206:  # server ignored the Range: start over
            have = 0
        total = resp.headers.get("Content-Length")
        total = int(total) + have if total else None
        with (
            open(part, "ab" if have else "wb") as f,
            tqdm(
                total=total,
                initial=have,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                desc=part.name.removesuffix(".part"),
                disable=not progress,
            ) as bar,
        ):
            while chunk := resp.read(CHUNK):
                f.write(chunk)
                bar.update(len(chunk))
            got = f.tell()
    if total is not None and got < total:  # the connection dropped early: resume from here
        raise ConnectionError(f"transfer cut at {got} of {total} bytes")


def fetch(
    url: str,
    dest: Path,
    *,
    lock: ChecksumLock | None = None,
    lock_key: str | None = None,
    expected_md5: str | None = None,
    retries: int = 5,
    backoff: float = 2.0,
    timeout: float = 60.0,
    progress: bool = True,
) -> Path:
    """Download `url` to `dest`, resuming and retrying; verify it before renaming.

    The sha256 is checked against (or recorded in) `lock` under `lock_key` (default: the
    archive's file name); `expected_md5` is a published checksum from the task catalog.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    for attempt in range(retries + 1):
        try:
            _download(url, part, timeout=timeout, progress=progress)
            break
        except (urllib.error.URLError, OSError, TimeoutError) as err:
            if isinstance(err, urllib.error.HTTPError) and 400 <= err.code < 500:
                raise RuntimeError(f"{url}: HTTP {err.code}; check the mirror URL in params.yaml") from err
            if attempt == retries:
                raise RuntimeError(f"{url}: download failed after {retries + 1} attempts: {err}") from err
            wait = backoff * 2**attempt
            log.warning("%s: %s; retrying in %.0f s (partial file kept)", url, err, wait)
            time.sleep(wait)
    digest, md5 = digests(part)
    try:
        if expected_md5 and md5 != expected_md5:
            raise ChecksumError(f"{url}: md5 {md5}, expected {expected_md5} (published, in the task catalog)")
        if lock is not None:
            lock.verify_or_record(lock_key or dest.name, digest, where=url)
    except ChecksumError:
        part.unlink()
        raise
    os.replace(part, dest)
    return dest


def _check_member(member: tarfile.TarInfo, prefix: str, archive: Path) -> None:
    name = member.name
    parts = Path(name).parts
    if name.startswith("/") or ".." in parts:
        raise UnsafeArchiveError(f"{archive}: member {name!r} escapes the target folder; refusing it")
    if member.issym() or member.islnk():
        raise UnsafeArchiveError(f"{archive}: member {name!r} is a link; refusing it")
    if not (member.isfile() or member.isdir()):
        raise UnsafeArchiveError(f"{archive}: member {name!r} is not a file or folder; refusing it")
    inside = name.startswith(prefix) or name.rstrip("/") in ("tasks", prefix.rstrip("/"))
    if not inside:
        raise UnsafeArchiveError(f"{archive}: member {name!r} lies outside {prefix}")


def cap_task_clips(task_dir: Path, rate: int, max_clips_per_split: int, *, seed: int) -> None:
    """Keep, per split, the seeded subset of clips that resampling keeps (audio.cap_clips):
    rewrite the label files, delete the other clips at `rate`."""
    from hearflow.core.io import write_json
    from hearflow.data.resample import cap_clips

    task = hear.Task.load(task_dir)
    for split in task.splits:
        labels = task.labels(split)
        keep = set(cap_clips(list(labels), max_clips_per_split, seed=seed, split=split))
        if len(keep) == len(labels):
            continue
        write_json(task_dir / f"{split}.json", {name: labels[name] for name in sorted(keep)})
        for name in set(labels) - keep:
            (task.audio_dir(rate, split) / name).unlink(missing_ok=True)


def extract_task(
    archive: Path,
    dest: Path,
    task: str,
    *,
    rate: int = ARCHIVE_RATE,
    max_clips_per_split: int | None = None,
    seed: int = 0,
) -> Path:
    """Unpack `tasks/<task>/...` of `archive` (audio at `rate` Hz) into `dest` and check the
    HEAR layout at that rate. With `max_clips_per_split`, each split keeps the seeded subset
    that `resample_task` would keep (for rates taken from their own archive, not resampled)."""
    prefix = f"tasks/{task}/"
    with atomic_path(dest) as tmp:
        tmp.mkdir()
        try:
            with tarfile.open(archive, "r:*") as tar:
                members = tar.getmembers()
                for m in members:
                    _check_member(m, prefix, archive)
                tar.extractall(tmp, members=members, filter="data")
        except (EOFError, tarfile.ReadError, zlib.error, OSError) as err:
            raise ArchiveError(
                f"{archive}: truncated or corrupt archive ({type(err).__name__}: {err}); delete it and "
                f"rerun to download it again (its checksum is checked against {task}'s lock entry)"
            ) from err
        src = tmp / "tasks" / task
        if not src.is_dir():
            raise hear.TaskFormatError(f"{archive}: holds no folder {prefix}")
        staged = tmp.parent / f"{tmp.name}.task"
        os.replace(src, staged)
        shutil.rmtree(tmp)
        os.replace(staged, tmp)
        loaded = hear.Task.load(tmp)
        hear.check_task_layout(loaded, rate)
        if max_clips_per_split is not None:
            cap_task_clips(tmp, rate, max_clips_per_split, seed=seed)
    return dest
