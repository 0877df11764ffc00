"""What a long-running process (``bootvol serve``, ``bootvol worker``) runs beside its main
loop: volume worker threads, the periodic cache cleaner and, with ``[compute] enabled``, the
compute host that runs the servers scheduled to this machine."""

from __future__ import annotations

from bootvol.compute.host import ComputeHost, open_compute_host
from bootvol.runtime import Bootvol
from bootvol.volumes.worker import BackgroundWork


class Background:
    def __init__(self, app: Bootvol, *, threads: int) -> None:
        self._volumes = BackgroundWork(app.volumes, app.sessions, threads=threads)
        self._compute: ComputeHost | None = (
            open_compute_host(app.servers, app.settings) if app.settings.compute.enabled else None
        )

    def start(self) -> None:
        self._volumes.start()
        if self._compute is not None:
            self._compute.start()

    def stop(self) -> None:
        if self._compute is not None:
            self._compute.stop()
        self._volumes.stop()
