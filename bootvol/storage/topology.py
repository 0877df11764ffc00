"""The storage estate built from the configuration: clusters → SVMs → FlexVols."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from bootvol.config import StorageSettings
from bootvol.errors import NotFound
from bootvol.storage.cluster import Cluster, OffloadDecision, Svm, copy_offload_decision
from bootvol.storage.flexvol import FlexVol


class Topology:
    """Every FlexVol by name, and whether copy offload may run between two of them."""

    def __init__(self, flexvols: list[FlexVol], *, copy_offload: bool) -> None:
        self._flexvols = {f.name: f for f in flexvols}
        self.copy_offload = copy_offload

    @classmethod
    def from_settings(cls, settings: StorageSettings) -> Topology:
        """The estate of bootvol's configuration, or of a Cinder backend's section."""
        clusters = {c.name: Cluster(c.name, c.version) for c in settings.cluster}
        svms = {s.name: Svm(s.name, clusters[s.cluster], s.vstorage) for s in settings.svm}
        flexvols = [
            FlexVol(
                name=f.name,
                svm=svms[f.svm],
                path=f.path,
                holds_volumes=f.volumes,
                export=f.export,
            )
            for f in settings.flexvol
        ]
        return cls(flexvols, copy_offload=settings.copy_offload)

    def __iter__(self) -> Iterator[FlexVol]:
        return iter(self._flexvols.values())

    def get(self, name: str) -> FlexVol:
        try:
            return self._flexvols[name]
        except KeyError:
            known = ", ".join(self._flexvols)
            raise NotFound(f"no FlexVol named {name!r} (known: {known})") from None

    def volume_flexvols(self) -> list[FlexVol]:
        return [f for f in self._flexvols.values() if f.holds_volumes]

    def flexvol_holding(self, path: Path) -> FlexVol | None:
        """The FlexVol whose folder contains ``path`` (the deepest, if folders nest)."""
        holders = [f for f in self._flexvols.values() if f.contains(path)]
        return max(holders, key=lambda f: len(str(f.path)), default=None)

    def offload_decision(self, source: FlexVol, destination: FlexVol) -> OffloadDecision:
        return copy_offload_decision(source.svm, destination.svm, enabled=self.copy_offload)
