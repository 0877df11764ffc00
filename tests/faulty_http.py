"""An HTTP image source that misbehaves on demand: trickles, stalls, or hangs up mid-stream.

``FaultyServer(folder)`` serves files like bootvol's LocalFileServer, with Content-Length,
in 64 KiB chunks; ``server.mode`` says what happens to each request from then on:

    "normal"    send everything at once
    "hold"      send half, then wait until the test calls ``resume()``: a download that
                cannot finish until the test says so (a victim to crash or stall in)
    "stall"     send half, then nothing until the client gives up
    "hangup"    send half, then close the connection

``server.held`` counts the requests that reached the hold point, so that a test waits for
that condition, not for a time.
"""

from __future__ import annotations

import hashlib
import threading
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from types import TracebackType

from bootvol.bench.local_server import LocalFileServer

from .support import Estate

CHUNK = 64 << 10


class FaultyServer:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.mode = "normal"
        self.requests = 0
        self.held = 0  # requests that reached the hold point
        self._resume = threading.Event()  # ends holds
        self._release = threading.Event()  # ends stalls (and holds) at shutdown
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.requests += 1
                path = outer.folder / self.path.lstrip("/")
                if not path.is_file():
                    self.send_error(404)
                    return
                data = path.read_bytes()
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Content-Type", "application/octet-stream")
                self.end_headers()
                half = len(data) // 2
                mode = outer.mode
                for offset in range(0, len(data), CHUNK):
                    if mode == "hold" and offset >= half:
                        mode = "normal"  # the rest, once resumed
                        outer.held += 1
                        outer._resume.wait()
                    if mode in ("stall", "hangup") and offset >= half:
                        if mode == "stall":
                            outer._release.wait(120)
                        self.close_connection = True
                        return
                    try:
                        self.wfile.write(data[offset : offset + CHUNK])
                    except (BrokenPipeError, ConnectionResetError):
                        return

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._http = LocalFileServer(folder, handler=Handler)

    def resume(self) -> None:
        """Let held requests send the rest, and later ones run through."""
        self.mode = "normal"
        self._resume.set()

    def url_for(self, name: str) -> str:
        return self._http.url_for(name)

    def __enter__(self) -> FaultyServer:
        self._http.__enter__()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        # Stalled and held requests end, so that the server can shut down.
        self._release.set()
        self._resume.set()
        self._http.__exit__(kind, value, traceback)


def remote_image(estate: Estate, server: FaultyServer, *, size_mib: int = 16) -> tuple[str, str]:
    """A qcow2 image served by ``server``; returns (image id, sha256 of its raw bytes)."""
    image, raw = estate.remote_image(size_mib=size_mib, url_for=server.url_for)
    return image, hashlib.sha256(raw.read_bytes()).hexdigest()
