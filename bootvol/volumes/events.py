"""What the volume service reports as it works, for whoever counts (bootvol.metrics)."""

from __future__ import annotations

from typing import Protocol


class VolumeObserver(Protocol):
    def volume_created(self, *, path: str, seconds: float, host_bytes: int) -> None:
        """A volume became ``available`` by provisioning ``path`` in ``seconds``."""

    def volume_failed(self, *, source: str) -> None:
        """A volume ended in ``error``; ``source`` is image, volume or empty."""

    def cache_evicted(self, *, flexvol: str, entries: int, freed_bytes: int) -> None:
        """The cache cleaner deleted ``entries`` cache files from ``flexvol``."""
