"""An HTTP mirror of a folder of task archives on 127.0.0.1, with Range requests.

The hear2021-sim suite's download jobs fetch their synthesised archives through it
(`suites.<suite>.serve: true`), so the real download code (hearflow.data.archives.fetch: HTTP,
resume by Range request, retries, checksum) runs as it does against Zenodo::

    with serve(Path("data/mirror/hear2021-sim")) as url:
        fetch(archive_url(url, task), dest, lock=lock)

or, as a process of its own (tests kill it mid-download)::

    python -m hearflow.data.mirror data/mirror/hear2021-sim --port 8765 [--throttle 1000000]

Standard library only. Python's SimpleHTTPRequestHandler ignores Range headers; this one
answers `bytes=N-` with 206 Partial Content, as Zenodo does.
"""

from __future__ import annotations

import argparse
import contextlib
import http.server
import os
import re
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

CHUNK = 1 << 16


def handler(folder: Path, *, throttle: float | None = None, log: list | Path | None = None):
    """A request handler class serving the files of `folder` (GET, HEAD; Range bytes=N-),
    at most `throttle` bytes per second per response; each request's (name, Range) is
    appended to `log` (a list, or a file: one tab-separated line per request)."""
    folder = Path(folder).resolve()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def _file(self) -> Path | None:
            name = self.path.split("?", 1)[0].rsplit("/", 1)[-1]
            path = folder / name
            return path if name and path.is_file() else None

        def _head(self, send_body: bool) -> None:
            path = self._file()
            rng = self.headers.get("Range")
            entry = (self.path.rsplit("/", 1)[-1], rng)
            if isinstance(log, list):
                log.append(entry)
            elif log is not None:
                with open(log, "a") as f:
                    f.write(f"{entry[0]}\t{entry[1] or ''}\n")
            if path is None:
                self.send_error(404, "no such archive")
                return
            size = path.stat().st_size
            start = 0
            if rng:
                m = re.fullmatch(r"bytes=(\d+)-", rng.strip())
                if not m:
                    self.send_error(400, f"unsupported Range {rng!r}")
                    return
                start = int(m.group(1))
                if start >= size:
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{size}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{size - 1}/{size}")
            else:
                self.send_response(200)
            self.send_header("Content-Type", "application/gzip")
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("Content-Length", str(size - start))
            self.end_headers()
            if send_body:
                self._send(path, start)

        def _send(self, path: Path, start: int) -> None:
            began, sent = time.monotonic(), 0
            with open(path, "rb") as f:
                f.seek(start)
                while chunk := f.read(CHUNK):
                    self.wfile.write(chunk)
                    sent += len(chunk)
                    if throttle:
                        ahead = sent / throttle - (time.monotonic() - began)
                        if ahead > 0:
                            time.sleep(ahead)

        def do_GET(self):
            with contextlib.suppress(ConnectionError):
                self._head(send_body=True)

        def do_HEAD(self):
            self._head(send_body=False)

    return Handler


@contextlib.contextmanager
def serve(folder: Path, *, port: int = 0, throttle: float | None = None, log: list | None = None) -> Iterator[str]:
    """Serve `folder` on 127.0.0.1 from a thread while the block runs; yields the base URL."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler(folder, throttle=throttle, log=log))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m hearflow.data.mirror", description=__doc__.split("\n\n")[0])
    ap.add_argument("folder", type=Path)
    ap.add_argument("--port", type=int, default=0, help="0: any free port (printed)")
    ap.add_argument("--throttle", type=float, default=None, help="bytes per second per download")
    ap.add_argument("--log", type=Path, default=None, help="append each request (file, Range) to this file")
    args = ap.parse_args(argv)
    if not args.folder.is_dir():
        ap.error(f"{args.folder} is no folder")
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", args.port), handler(args.folder, throttle=args.throttle, log=args.log)
    )
    server.daemon_threads = True
    print(f"http://127.0.0.1:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever(poll_interval=0.1)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
