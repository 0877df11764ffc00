"""Which FlexVol gets a new volume.

Preference, among FlexVols that hold volumes and have room for what the creation will
write: one that already caches the image (clone, nothing written), then one that holds the
image file (direct clone), then the one with the most available space.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bootvol.errors import InsufficientSpace
from bootvol.storage.flexvol import FlexVol
from bootvol.volumes.cache import ImageCache

GiB = 1 << 30


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
