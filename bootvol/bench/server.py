"""The benchmark's stand-in remote image service: an HTTP file server in its own process.

A real image service runs on another machine; in the benchmark it must at least not share
this process's interpreter lock with the client it serves, or the download path would be
measured slower than it is. The child serves files with ``sendfile`` so that the stand-in
costs as little CPU as it can on a 2-core machine, for bootvol's client and for the
``curl`` reference alike.

Run as ``python -m bootvol.bench.server FOLDER``: it prints its base URL on one line, then
serves until its standard input closes.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import TracebackType

from bootvol.bench.local_server import LocalFileServer


class ServedFolder:
    """``with ServedFolder(folder) as server: server.url_for("name")``: a child process."""

    def __init__(self, folder: Path) -> None:
        self._folder = folder
        self._process: subprocess.Popen[str] | None = None
        self.base_url = ""

    def url_for(self, relative: str) -> str:
        return f"{self.base_url}/{relative}"

    def __enter__(self) -> ServedFolder:
        self._process = subprocess.Popen(
            [sys.executable, "-m", __name__, str(self._folder)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._process.stdout is not None
        self.base_url = self._process.stdout.readline().strip()
        if not self.base_url.startswith("http://"):
            self._stop()
            raise RuntimeError(f"the benchmark's HTTP server did not start: {self.base_url!r}")
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop()

    def _stop(self) -> None:
        if self._process is None:
            return
        assert self._process.stdin is not None
        self._process.stdin.close()  # the child's signal to stop
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        if self._process.stdout is not None:
            self._process.stdout.close()
        self._process = None


def _serve(folder: Path) -> None:
    with LocalFileServer(folder) as server:
        print(server.base_url, flush=True)
        sys.stdin.read()  # returns when the parent closes our stdin, or dies


if __name__ == "__main__":
    _serve(Path(sys.argv[1]))
