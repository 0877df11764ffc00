"""Prometheus metrics of one bootvol process, in a registry of its own.

Fed by the volume service through the VolumeObserver protocol; served at ``/metrics``.
A registry of our own (not prometheus-client's global one) keeps two Bootvol instances in
one process (tests) from counting into each other.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from bootvol.volumes.records import ProvisioningPath

CONTENT_TYPE = CONTENT_TYPE_LATEST

# From a millisecond reflink to a many-minute download of a large image.
_SECONDS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
# Paths that looked for the image in the cache; a volume clone or an empty volume did not.
_IMAGE_PATHS = {
    str(p)
    for p in ProvisioningPath
    if p not in (ProvisioningPath.VOLUME_CLONE, ProvisioningPath.EMPTY)
}


class Metrics:
    """Counters and histograms; implements bootvol.volumes.events.VolumeObserver."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.volumes_created = Counter(
            "bootvol_volumes_created",
            "Volumes that became available, by provisioning path.",
            ["path"],
            registry=self.registry,
        )
        self.volumes_failed = Counter(
            "bootvol_volumes_failed",
            "Volumes that ended in error, by source (image, volume, empty).",
            ["source"],
            registry=self.registry,
        )
        self.creation_seconds = Histogram(
            "bootvol_volume_creation_seconds",
            "Seconds a worker took to make a volume, by provisioning path.",
            ["path"],
            buckets=_SECONDS_BUCKETS,
            registry=self.registry,
        )
        self.cache_hits = Counter(
            "bootvol_image_cache_hits",
            "Volumes from an image cut from a cache entry already in their FlexVol.",
            registry=self.registry,
        )
        self.cache_misses = Counter(
            "bootvol_image_cache_misses",
            "Volumes from an image whose FlexVol did not cache it (another path was taken).",
            registry=self.registry,
        )
        self.bytes_copied = Counter(
            "bootvol_bytes_copied",
            "Image bytes that passed through this host's user space (the provisioning "
            "record's host_bytes), by provisioning path.",
            ["path"],
            registry=self.registry,
        )
        self.cache_evictions = Counter(
            "bootvol_cache_evictions",
            "Image cache entries deleted by the cache cleaner, by FlexVol.",
            ["flexvol"],
            registry=self.registry,
        )
        self.cache_evicted_bytes = Counter(
            "bootvol_cache_evicted_bytes",
            "Bytes freed by the cache cleaner, by FlexVol.",
            ["flexvol"],
            registry=self.registry,
        )

    def volume_created(self, *, path: str, seconds: float, host_bytes: int) -> None:
        self.volumes_created.labels(path=path).inc()
        self.creation_seconds.labels(path=path).observe(seconds)
        self.bytes_copied.labels(path=path).inc(host_bytes)
        if path == ProvisioningPath.CACHE_CLONE:
            self.cache_hits.inc()
        elif path in _IMAGE_PATHS:
            self.cache_misses.inc()

    def volume_failed(self, *, source: str) -> None:
        self.volumes_failed.labels(source=source).inc()

    def cache_evicted(self, *, flexvol: str, entries: int, freed_bytes: int) -> None:
        self.cache_evictions.labels(flexvol=flexvol).inc(entries)
        self.cache_evicted_bytes.labels(flexvol=flexvol).inc(freed_bytes)

    def exposition(self) -> bytes:
        """The text exposition format, as Prometheus scrapes it."""
        return generate_latest(self.registry)
