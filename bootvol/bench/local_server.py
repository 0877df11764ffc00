"""A loopback HTTP server that serves files from a folder: a stand-in remote image source.

The demo and the benchmark use it to exercise the download path the way a real remote
image service would (streamed GET with Content-Length), without leaving this machine.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import BinaryIO


class FileHandler(SimpleHTTPRequestHandler):
    """Serves a folder quietly, with sendfile: the kernel moves the bytes, not a Python loop."""

    def copyfile(self, source: BinaryIO, outputfile: BinaryIO) -> None:  # type: ignore[override]
        outputfile.flush()
        self.connection.sendfile(source)

    def log_message(self, format: str, *args: object) -> None:
        pass


class LocalFileServer:
    """``with LocalFileServer(folder) as server: server.url_for("name")``."""

    def __init__(
        self,
        folder: Path,
        *,
        host: str = "127.0.0.1",
        handler: Callable[..., BaseHTTPRequestHandler] | None = None,
    ) -> None:
        """``handler`` replaces the quiet sendfile FileHandler (tests serve faults with it)."""
        handler = handler or functools.partial(FileHandler, directory=str(folder))
        self._server = ThreadingHTTPServer((host, 0), handler)
        self._server.daemon_threads = True  # a stalled request must not hold up shutdown
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def url_for(self, name: str) -> str:
        return f"{self.base_url}/{name}"

    def __enter__(self) -> LocalFileServer:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
