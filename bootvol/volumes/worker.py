"""The background worker: threads in a server process that make accepted volumes.

Each thread loops: claim the oldest claimable volume (bootvol.volumes.claims: unclaimed, or
its holder's lease ran out), provision it through the volume service (which renews the
lease meanwhile), and look again; with nothing to claim it sleeps until the service accepts
a volume or ``poll_seconds`` pass (a volume accepted by another process, or a lease running
out, is seen by polling). The API thread that accepted a volume never waits for it.

Workers run in the API server (``bootvol serve --workers N``) or alone (``bootvol worker``,
on any node sharing the database and the FlexVol mount paths). On start, claims held by dead
processes of this host are released at once, so the volumes they were making are made again
from the beginning without waiting for their leases.
"""

from __future__ import annotations

import logging
import threading

from bootvol.db.session import SessionFactory
from bootvol.volumes.claims import claim_next, release_abandoned, this_process
from bootvol.volumes.cleaner import PeriodicCleaner
from bootvol.volumes.service import VolumeService

log = logging.getLogger(__name__)


class VolumeWorker:
    def __init__(
        self,
        volumes: VolumeService,
        sessions: SessionFactory,
        *,
        threads: int = 2,
    ) -> None:
        self._volumes = volumes
        self._sessions = sessions
        self._settings = volumes.settings.workers
        self._claimant = this_process()
        self._stop = threading.Event()
        self._wakeup = threading.Event()
        self._threads = [
            threading.Thread(target=self._loop, name=f"volume-worker-{n}", daemon=True)
            for n in range(threads)
        ]

    def start(self) -> None:
        released = release_abandoned(self._sessions)
        if released:
            log.warning("released %d volumes left by dead workers: %s", len(released), released)
        self._volumes.on_accept.append(self.wake)
        for thread in self._threads:
            thread.start()

    def wake(self) -> None:
        self._wakeup.set()

    def stop(self, *, timeout: float = 30.0) -> None:
        """Stop claiming; wait up to ``timeout`` for volumes being made to finish."""
        self._stop.set()
        self._wakeup.set()
        if self.wake in self._volumes.on_accept:
            self._volumes.on_accept.remove(self.wake)
        for thread in self._threads:
            thread.join(timeout)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                claim = claim_next(
                    self._sessions,
                    claimant=self._claimant,
                    lease_seconds=self._settings.lease_seconds,
                )
            except Exception:  # the database hiccuped: log, wait, try again
                log.exception("claiming a volume failed")
                claim = None
            if claim is None:
                self._wakeup.wait(self._settings.poll_seconds)
                self._wakeup.clear()
                continue
            if claim.attempt > 1:
                log.warning(
                    "volume %s: taking it over (attempt %d; the previous holder's lease ran out)",
                    claim.volume_id,
                    claim.attempt,
                )
            try:
                self._volumes.provisioner.provision(claim.volume_id, claimed=claim)
            except Exception:  # provision ends the volume in error itself; keep working
                log.exception("provisioning volume %s failed", claim.volume_id)


class BackgroundWork:
    """What a long-running process (``bootvol serve``, ``bootvol worker``) runs beside its
    main loop: volume worker threads and the periodic cache cleaner."""

    def __init__(self, volumes: VolumeService, sessions: SessionFactory, *, threads: int) -> None:
        self._settings = volumes.settings
        self._worker = VolumeWorker(volumes, sessions, threads=threads)
        self._cleaner = PeriodicCleaner(
            volumes.provisioner.clean_caches,
            interval_seconds=self._settings.cache.clean_interval_seconds,
        )

    def start(self) -> None:
        self._worker.start()
        self._cleaner.start()

    def stop(self) -> None:
        """Stop claiming; volumes being made get up to a lease to finish, else their leases
        run out and another worker takes them over."""
        self._cleaner.stop()
        self._worker.stop(timeout=self._settings.workers.lease_seconds)
