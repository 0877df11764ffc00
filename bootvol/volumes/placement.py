"""Which FlexVol gets a new volume.

How full a FlexVol is counts as Cinder's capacity weigher counts a thin pool: its size less
the sizes of the volumes placed on it (``provisioned``, which the caller reads from its
records: this module keeps none). Physical free space cannot tell FlexVols apart here: a
reflink clone takes no space until the guest writes, and the default FlexVols are folders of
one filesystem.

From an image, among FlexVols that hold volumes and have room for what the creation will
write, and whose free share is within ``margin_percent`` points of the emptiest one's: one
that already caches the image (clone, nothing written), then one that holds the image file
(direct clone). Past the margin, or when none of those qualifies, the emptiest FlexVol gets
the volume and with it the image in its cache (one copy offload or download; clones there
after), so that load spreads while each FlexVol fills its cache once. From another volume:
the source's FlexVol (a reflink cannot cross filesystems). Empty: the emptiest FlexVol.
A FlexVol named by the request is used as it is, if it holds volumes and has the room.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from bootvol.errors import InsufficientSpace, InvalidRequest
from bootvol.storage.flexvol import FlexVol
from bootvol.storage.topology import Topology
from bootvol.units import GiB
from bootvol.volumes.cache import ImageCache

Allowed = Callable[[FlexVol], bool]  # a FlexVol a volume type admits
Provisioned = Mapping[str, int]  # FlexVol name → bytes of the volumes placed on it


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


def free_percent(flexvol: FlexVol, provisioned: Provisioned) -> float:
    """The share of ``flexvol`` not yet promised to volumes (negative when overcommitted)."""
    total = flexvol.space().total_bytes
    if not total:
        return 0.0
    return 100.0 * (total - provisioned.get(flexvol.name, 0)) / total


def choose_flexvol(
    candidates: list[FlexVol],
    *,
    image_id: str,
    image_file: Path | None,
    raw_size: int,
    provisioned: Provisioned,
    margin_percent: float,
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
    free = _free(with_room, provisioned)
    by_free = _emptiest_first(with_room, free)
    emptiest = by_free[0]
    near = [f for f in by_free if free[f.name] >= free[emptiest.name] - margin_percent]
    has_image: list[tuple[Callable[[FlexVol], bool], str]] = [
        (lambda f: ImageCache(f).contains(image_id), "already caches the image"),
        (lambda f: image_file is not None and f.contains(image_file), "holds the image file"),
    ]
    for holds, what in has_image:
        for flexvol in near:
            if holds(flexvol):
                return Placement(flexvol, f"{what} ({_fullness(flexvol, free)})")
    reason = f"emptiest ({_fullness(emptiest, free)})"
    if any(holds(f) for holds, _ in has_image for f in by_free if f not in near):
        reason += (
            f": those that have the image are more than {margin_percent:g} points fuller, "
            "so this one gets it in its cache"
        )
    return Placement(emptiest, reason)


def _emptiest_first(flexvols: list[FlexVol], free: Mapping[str, float]) -> list[FlexVol]:
    """By free share; of FlexVols equally provisioned (fresh ones), more available space first."""
    return sorted(flexvols, key=lambda f: (-free[f.name], -f.space().available_bytes))


def _free(flexvols: list[FlexVol], provisioned: Provisioned) -> dict[str, float]:
    return {flexvol.name: free_percent(flexvol, provisioned) for flexvol in flexvols}


def _fullness(flexvol: FlexVol, free: Mapping[str, float]) -> str:
    return f"{free[flexvol.name]:.0f} % not provisioned"


def place_for_image(
    topology: Topology,
    *,
    image_id: str,
    image_file: Path | None,
    raw_size: int,
    requested: str | None,
    provisioned: Provisioned,
    margin_percent: float,
    allowed: Allowed | None = None,
) -> Placement:
    """The FlexVol for a volume of an image (``requested``: a FlexVol the request named;
    ``allowed``: the FlexVols its volume type admits)."""
    if requested is not None:
        flexvol = volume_flexvol(topology, requested)
        check_room(flexvol, image_id=image_id, raw_size=raw_size)
        return Placement(flexvol, "named by the request")
    return choose_flexvol(
        candidates(topology, allowed),
        image_id=image_id,
        image_file=image_file,
        raw_size=raw_size,
        provisioned=provisioned,
        margin_percent=margin_percent,
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
    topology: Topology,
    *,
    requested: str | None,
    provisioned: Provisioned,
    allowed: Allowed | None = None,
) -> FlexVol:
    """A sparse file takes no space until written: the emptiest FlexVol by provisioning."""
    if requested is not None:
        return volume_flexvol(topology, requested)
    found = candidates(topology, allowed)
    return _emptiest_first(found, _free(found, provisioned))[0]


def volume_flexvol(topology: Topology, name: str) -> FlexVol:
    flexvol = topology.get(name)
    if not flexvol.holds_volumes:
        raise InvalidRequest(f"FlexVol {flexvol.name} does not hold volumes")
    return flexvol
