"""The long-running service: the HTTP API, the volume workers and the periodic cache cleaner
in one process, on the settings of one Bootvol.

``Server.prepare`` makes the ``admin`` user on first start and (re)writes the data folder's
clouds.yaml; ``run`` serves until interrupted; ``start``/``stop`` serve from a background
thread (tests, embedding).
"""

from __future__ import annotations

import errno
import logging
import socket
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn

from bootvol.api.app import create_app
from bootvol.background import Background
from bootvol.errors import AddressInUse
from bootvol.identity import clouds
from bootvol.identity.service import ADMIN_NAME
from bootvol.runtime import Bootvol

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8780  # one port for all three APIs; Cinder's own 8776 is left free


@dataclass(frozen=True)
class Prepared:
    clouds_yaml: Path
    entry: dict[str, Any] | None  # None when the admin password is not known here
    created_admin: bool


class Server:
    def __init__(
        self,
        bootvol: Bootvol,
        *,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        public_url: str | None = None,
        workers: int = 2,
    ) -> None:
        self.bootvol = bootvol
        self.host = host
        self.port = port
        self.public_url = public_url
        self._background = Background(bootvol, threads=workers)
        self._uvicorn: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None

    @property
    def base_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        host = self.host if self.host not in ("0.0.0.0", "::", "") else DEFAULT_HOST
        return f"http://{host}:{self.port}"

    @property
    def auth_url(self) -> str:
        return f"{self.base_url}/identity/v3"

    def prepare(self) -> Prepared:
        """Create the admin user on first start; write clouds.yaml for this address."""
        path = self.bootvol.settings.data_dir / clouds.FILE_NAME
        password = self.bootvol.identity.ensure_admin()
        created = password is not None
        password = password or clouds.read_password(path)
        if password is None:
            return Prepared(clouds_yaml=path, entry=None, created_admin=False)
        entry = clouds.cloud_entry(
            auth_url=self.auth_url, username=ADMIN_NAME, password=password, project=ADMIN_NAME
        )
        clouds.write_cloud(path, entry)
        return Prepared(clouds_yaml=path, entry=entry, created_admin=created)

    def run(self) -> None:
        """Serve until interrupted (SIGINT, SIGTERM)."""
        listening = self._listen()  # before the workers start: a taken port fails alone
        self._background.start()
        try:
            self._make_uvicorn().run(sockets=[listening])
        finally:
            self._background.stop()
            listening.close()

    def start(self) -> None:
        """Serve from a background thread; returns once the port accepts connections."""
        self._socket = self._listen()
        self._background.start()
        server = self._make_uvicorn()
        self._thread = threading.Thread(
            target=server.run, kwargs={"sockets": [self._socket]}, name="api", daemon=True
        )
        self._thread.start()
        while not server.started:
            if not self._thread.is_alive():
                raise RuntimeError("the API server stopped while starting")
            threading.Event().wait(0.02)

    def stop(self) -> None:
        if self._uvicorn is not None:
            self._uvicorn.should_exit = True
        if self._thread is not None:
            self._thread.join(30)
        if self._socket is not None:
            self._socket.close()
        self._background.stop()

    def _listen(self) -> socket.socket:
        """The listening socket (uvicorn's own bind exits 3, which says "not found" here)."""
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        # IPPROTO_TCP named: asyncio sets TCP_NODELAY only on sockets that say they are TCP,
        # and without it a response's last segment waits for the client's delayed ACK.
        listening = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            listening.bind((self.host, self.port))
        except OSError as exc:
            listening.close()
            if exc.errno == errno.EADDRINUSE:
                raise AddressInUse(
                    f"{self.host}:{self.port} is already in use by another process; stop it "
                    "or serve on another --port"
                ) from exc
            raise AddressInUse(
                f"cannot listen on {self.host}:{self.port}: {exc.strerror}; give an address "
                "of this machine with --host"
            ) from exc
        self.port = listening.getsockname()[1]  # port 0: the kernel picked one
        return listening

    def _make_uvicorn(self) -> uvicorn.Server:
        app = create_app(self.bootvol, public_url=self.public_url)
        # log_config=None: uvicorn logs through bootvol's logging setup (-v shows requests).
        # access_log=False: bootvol.api.requests logs each request, with its request id.
        config = uvicorn.Config(
            app, host=self.host, port=self.port, log_config=None, lifespan="off", access_log=False
        )
        self._uvicorn = uvicorn.Server(config)
        return self._uvicorn
