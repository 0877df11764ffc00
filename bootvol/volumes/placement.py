"""Which FlexVol gets a new volume.

From an image, among FlexVols that hold volumes and have room for what the creation will
write: one that already caches the image (clone, nothing written), then one that holds the
image file (direct clone), then the one with the most available space. From another volume:
the source's FlexVol (a reflink cannot cross filesystems). Empty: the most available space.
A FlexVol named by the request is used as it is, if it holds volumes and has the room.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bootvol.errors import InsufficientSpace, InvalidRequest
from bootvol.storage.flexvol import FlexVol
from bootvol.storage.topology import Topology
from bootvol.units import GiB
from bootvol.volumes.cache import ImageCache

Allowed = Callable[[FlexVol], bool]  # a FlexVol a volume type admits


@dataclass(frozen=True)
class Placement:
    flexvol: FlexVol
    reason: str


def bytes_needed(flexvol: FlexVol, *, image_id: str, raw_size: int) -> int:
    """Physical bytes a creation may write on ``flexvol``: none if cached, else the raw image."""
    return 0 if ImageCache(flexvol).contains(image_id) else raw_size


def check_room(flexvol: FlexVol, *, image_id: str, raw_size: int) -> None:
    needed = bytes_needed(flexvol, image_id=image_id, raw_size=raw_size)
    available = flexvol.space().available_bytes
    if needed > available:
        raise InsufficientSpace(
            f"FlexVol {flexvol.name} has {available / GiB:.2f} GiB available but the image "
            f"needs {needed / GiB:.2f} GiB of raw space; pick another FlexVol or free space "
            "(bootvol cache clean)"
        )


def choose_flexvol(
    candidates: list[FlexVol], *, image_id: str, image_file: Path | None, raw_size: int
) -> Placement:
    with_room = []
    for flexvol in candidates:
        needed = bytes_needed(flexvol, image_id=image_id, raw_size=raw_size)
        if needed <= flexvol.space().available_bytes:
            with_room.append(flexvol)
    if not with_room:
        best = max(candidates, key=lambda f: f.space().available_bytes)
        raise InsufficientSpace(
            f"no FlexVol can hold image {image_id}: it needs {raw_size / GiB:.2f} GiB of raw "
            f"space and the most available is {best.space().available_bytes / GiB:.2f} GiB "
            f"on {best.name}"
        )
    for flexvol in with_room:
        if ImageCache(flexvol).contains(image_id):
            return Placement(flexvol, "already caches the image")
    for flexvol in with_room:
        if image_file is not None and flexvol.contains(image_file):
            return Placement(flexvol, "holds the image file")
    most = max(with_room, key=lambda f: f.space().available_bytes)
    return Placement(most, "most available space")


def place_for_image(
    topology: Topology,
    *,
    image_id: str,
    image_file: Path | None,
    raw_size: int,
    requested: str | None,
    allowed: Allowed | None = None,
) -> Placement:
    """The FlexVol for a volume of an image (``requested``: a FlexVol the request named;
    ``allowed``: the FlexVols its volume type admits)."""
    if requested is not None:
        flexvol = volume_flexvol(topology, requested)
        check_room(flexvol, image_id=image_id, raw_size=raw_size)
        return Placement(flexvol, "named by the request")
    return choose_flexvol(
        candidates(topology, allowed), image_id=image_id, image_file=image_file, raw_size=raw_size
    )


def candidates(topology: Topology, allowed: Allowed | None) -> list[FlexVol]:
    """The FlexVols that hold volumes and that ``allowed`` admits; InvalidRequest if none."""
    found = [f for f in topology.volume_flexvols() if allowed is None or allowed(f)]
    if not found:
        raise InvalidRequest(
            "no FlexVol meets the volume type's extra specs (bootvol:flexvol, "
            "capabilities:reflink); see `bootvol flexvol list`"
        )
    return found


def place_for_source(
    topology: Topology, *, source_id: str, source_flexvol: str, source_file: Path
) -> FlexVol:
    """A clone lives where its source does: a reflink cannot cross filesystems."""
    flexvol = topology.get(source_flexvol)
    if not flexvol.capabilities.reflink:
        needed = source_file.stat().st_blocks * 512
        available = flexvol.space().available_bytes
        if needed > available:
            raise InsufficientSpace(
                f"FlexVol {flexvol.name} has {available / GiB:.2f} GiB available; a copy "
                f"of volume {source_id} needs {needed / GiB:.2f} GiB"
            )
    return flexvol


def place_empty(
    topology: Topology, *, requested: str | None, allowed: Allowed | None = None
) -> FlexVol:
    """A sparse file takes no space: the FlexVol with the most available space."""
    if requested is not None:
        return volume_flexvol(topology, requested)
    return max(candidates(topology, allowed), key=lambda f: f.space().available_bytes)


def volume_flexvol(topology: Topology, name: str) -> FlexVol:
    flexvol = topology.get(name)
    if not flexvol.holds_volumes:
        raise InvalidRequest(f"FlexVol {flexvol.name} does not hold volumes")
    return flexvol
