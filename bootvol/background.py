"""What a long-running process (``bootvol serve``, ``bootvol worker``) runs beside its main
loop: volume worker threads, the periodic cache cleaner, the release of image transfers
whose process died (bootvol.images.leases) and, with ``[compute] enabled``, the compute host
that runs the servers scheduled to this machine."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bootvol.runtime import Bootvol
from bootvol.volumes.cleaner import PeriodicCleaner
from bootvol.volumes.worker import BackgroundWork

if TYPE_CHECKING:
    from bootvol.compute.host import ComputeHost


class Background:
    def __init__(self, app: Bootvol, *, threads: int) -> None:
        self._volumes = BackgroundWork(app.volumes, app.sessions, threads=threads)
        # As often as a volume worker's lease is renewed: an abandoned image is settled
        # within about a lease and a third of its last sign of life.
        self._images = PeriodicCleaner(
            app.images.release_abandoned,
            interval_seconds=app.settings.workers.lease_seconds / 3,
            name="image-lease-release",
        )
        self._compute: ComputeHost | None = None
        if app.settings.compute.enabled:
            # Only a compute host loads libvirt: volume workers run where it is not installed.
            from bootvol.compute.host import open_compute_host

            self._compute = open_compute_host(
                app.servers, compute=app.settings.compute, console_dir=app.settings.console_dir
            )

    def start(self) -> None:
        self._volumes.start()
        self._images.start()
        if self._compute is not None:
            self._compute.start()

    def stop(self) -> None:
        if self._compute is not None:
            self._compute.stop()
        self._images.stop()
        self._volumes.stop()
