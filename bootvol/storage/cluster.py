"""Clusters and SVMs, and the one question they answer: may these two FlexVols copy-offload?

The rule is NetApp's for its copy offload tool: source and destination are in the same
cluster, the cluster runs ONTAP 8.2 or later, vStorage is enabled on the SVMs involved, and
the operator has turned ``copy_offload`` on.
"""

from __future__ import annotations

from dataclasses import dataclass

MIN_COPY_OFFLOAD_VERSION = (8, 2)


@dataclass(frozen=True)
class Cluster:
    name: str
    version: str

    @property
    def version_tuple(self) -> tuple[int, ...]:
        return tuple(int(part) for part in self.version.split("."))


@dataclass(frozen=True)
class Svm:
    name: str
    cluster: Cluster
    vstorage: bool


@dataclass(frozen=True)
class OffloadDecision:
    allowed: bool
    reason: str  # why not, or what allowed it; shown in the volume's provisioning record


def copy_offload_decision(source: Svm, destination: Svm, *, enabled: bool) -> OffloadDecision:
    """Whether data may be copied storage-side from an SVM to another, and why (not)."""
    if not enabled:
        return OffloadDecision(False, "copy_offload is off in the configuration")
    if source.cluster.name != destination.cluster.name:
        return OffloadDecision(
            False,
            f"source is in cluster {source.cluster.name}, destination in "
            f"{destination.cluster.name}: copy offload stays within one cluster",
        )
    if source.cluster.version_tuple < MIN_COPY_OFFLOAD_VERSION:
        return OffloadDecision(
            False,
            f"cluster {source.cluster.name} runs {source.cluster.version}; copy offload "
            "needs 8.2 or later",
        )
    for svm in {source.name: source, destination.name: destination}.values():
        if not svm.vstorage:
            return OffloadDecision(False, f"vstorage is disabled on SVM {svm.name}")
    return OffloadDecision(True, f"same cluster {source.cluster.name}, vstorage on")
