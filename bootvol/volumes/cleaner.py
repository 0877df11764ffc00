"""The cache cleaner: NetApp's threshold rule, applied per FlexVol.

When a FlexVol's available space is at or below ``thres_avl_size_perc_start`` percent,
entries not used for ``expiry_thres_minutes`` are deleted, largest first (as the Cinder
NetApp NFS driver orders them), until available space reaches ``thres_avl_size_perc_stop``
percent. Entries in use are skipped, and so are entries still linked by qcow2 overlay
volumes, whose deletion would free nothing.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from bootvol.config import CacheSettings
from bootvol.storage.flexvol import FlexVol
from bootvol.volumes.cache import CacheEntry, ImageCache

log = logging.getLogger(__name__)


@dataclass
class CleanReport:
    flexvol: str
    available_percent_before: float
    available_percent_after: float
    ran: bool  # false when space was above the start threshold
    evicted: list[str] = field(default_factory=list)  # image ids
    freed_bytes: int = 0


def clean_flexvol(
    flexvol: FlexVol, settings: CacheSettings, *, now: dt.datetime | None = None
) -> CleanReport:
    now = now or dt.datetime.now(dt.UTC)
    before = flexvol.space().available_percent
    report = CleanReport(flexvol.name, before, before, ran=False)
    if before > settings.thres_avl_size_perc_start:
        return report
    report.ran = True
    cache = ImageCache(flexvol)
    candidates = sorted(
        (e for e in cache.entries() if _expired(e, settings, now) and e.links == 1),
        key=lambda e: e.allocated_bytes,
        reverse=True,
    )
    # Space is read again (settled: syncfs, then statvfs until steady) only after an
    # eviction freed something; nothing else here changes it.
    available = before
    for entry in candidates:
        if available >= settings.thres_avl_size_perc_stop:
            break
        if cache.evict(entry):
            report.evicted.append(entry.image_id)
            report.freed_bytes += entry.allocated_bytes
            available = flexvol.space(settled=True).available_percent
            log.info(
                "cache cleaner: evicted %s from %s (%d bytes, idle %.0f min)",
                entry.path.name,
                flexvol.name,
                entry.allocated_bytes,
                entry.idle_minutes(now),
            )
        else:
            log.info("cache cleaner: %s is in use, kept", entry.path.name)
    report.available_percent_after = available
    return report


def _expired(entry: CacheEntry, settings: CacheSettings, now: dt.datetime) -> bool:
    return entry.idle_minutes(now) >= settings.expiry_thres_minutes


class PeriodicCleaner:
    """Calls ``clean`` every ``interval_seconds`` in a daemon thread until stopped.

    A server passes ``Provisioner.clean_caches`` (which also counts evictions in the
    metrics); ``bootvol worker`` does the same on the nodes that run no API.
    """

    def __init__(
        self, clean: Callable[[], object], *, interval_seconds: float, name: str = "cache-cleaner"
    ) -> None:
        self._clean = clean
        self._interval_seconds = interval_seconds
        self._name = name
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _loop(self) -> None:
        while not self._stop.wait(self._interval_seconds):
            try:
                self._clean()
            except Exception:  # keep cleaning later; the log says what failed
                log.exception("periodic %s failed", self._name)
