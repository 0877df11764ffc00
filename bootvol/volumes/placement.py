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
from bootvol.storage.flexvol import FlexVol, Space
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


@dataclass(frozen=True)
class _Seen:
    """A candidate FlexVol as placement sees it, read once: statvfs, the cache entry, the
    image file."""

    flexvol: FlexVol
    space: Space
    free: float  # percent of its size not yet provisioned (negative when overcommitted)
    caches: bool = False
    holds_file: bool = False

    def fullness(self) -> str:
        return f"{self.free:.0f} % not provisioned"


def _look(
    flexvol: FlexVol,
    provisioned: Provisioned,
    *,
    image_id: str | None = None,
    image_file: Path | None = None,
) -> _Seen:
    space = flexvol.space()
    promised = provisioned.get(flexvol.name, 0)
    free = 100.0 * (space.total_bytes - promised) / space.total_bytes if space.total_bytes else 0.0
    return _Seen(
        flexvol=flexvol,
        space=space,
        free=free,
        caches=image_id is not None and ImageCache(flexvol).contains(image_id),
        holds_file=image_file is not None and flexvol.contains(image_file),
    )


def _emptiest_first(seen: list[_Seen]) -> list[_Seen]:
    """By free share; of FlexVols equally provisioned (fresh ones), more available space first."""
    return sorted(seen, key=lambda s: (-s.free, -s.space.available_bytes))


def choose_flexvol(
    candidates: list[FlexVol],
    *,
    image_id: str,
    image_file: Path | None,
    raw_size: int,
    provisioned: Provisioned,
    margin_percent: float,
) -> Placement:
    seen = [_look(f, provisioned, image_id=image_id, image_file=image_file) for f in candidates]
    # A FlexVol that caches the image writes nothing; any other, the raw image.
    with_room = [s for s in seen if (0 if s.caches else raw_size) <= s.space.available_bytes]
    if not with_room:
        best = max(seen, key=lambda s: s.space.available_bytes)
        raise InsufficientSpace(
            f"no FlexVol can hold image {image_id}: it needs {raw_size / GiB:.2f} GiB of raw "
            f"space and the most available is {best.space.available_bytes / GiB:.2f} GiB "
            f"on {best.flexvol.name}"
        )
    by_free = _emptiest_first(with_room)
    emptiest = by_free[0]
    near = [s for s in by_free if s.free >= emptiest.free - margin_percent]
    has_image: list[tuple[Callable[[_Seen], bool], str]] = [
        (lambda s: s.caches, "already caches the image"),
        (lambda s: s.holds_file, "holds the image file"),
    ]
    for holds, what in has_image:
        for candidate in near:
            if holds(candidate):
                return Placement(candidate.flexvol, f"{what} ({candidate.fullness()})")
    reason = f"emptiest ({emptiest.fullness()})"
    if any(s.caches or s.holds_file for s in by_free if s not in near):
        reason += (
            f": those that have the image are more than {margin_percent:g} points fuller, "
            "so this one gets it in its cache"
        )
    return Placement(emptiest.flexvol, reason)


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
    return _emptiest_first([_look(f, provisioned) for f in found])[0].flexvol


def volume_flexvol(topology: Topology, name: str) -> FlexVol:
    flexvol = topology.get(name)
    if not flexvol.holds_volumes:
        raise InvalidRequest(f"FlexVol {flexvol.name} does not hold volumes")
    return flexvol
