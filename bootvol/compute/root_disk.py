"""Whether an image fits the root disk a server would boot from, checked before anything
is made: a boot volume of the requested size, or a root volume of the flavor's disk.

The root disk holds the image converted to raw, so what must fit is the image's virtual
size, and its Glance ``min_disk``. The answers are Nova's (and, for a volume that the image
does not fit, the one Cinder gives when it makes the volume), all 400.
"""

from __future__ import annotations

import math

from bootvol.db.models import ImageRecord
from bootvol.errors import InvalidRequest
from bootvol.units import GiB


def needed_gib(image: ImageRecord) -> int:
    """The smallest root disk the image fits: its virtual size, and its min_disk."""
    return max(math.ceil(_image_bytes(image) / GiB), image.min_disk)


def _image_bytes(image: ImageRecord) -> int:
    """The bytes of disk the image fills once converted to raw (its virtual size)."""
    return image.virtual_size or image.size or 0


def check_volume_holds(image: ImageRecord, *, size_gib: int) -> None:
    """A boot volume too small for the image is refused at once: below min_disk with Nova's
    VolumeSmallerThanMinDisk, below the virtual size with the answer Cinder would give
    when it made the volume (ImageUnacceptable) rather than a server ending ERROR later."""
    if image.min_disk > size_gib:
        raise InvalidRequest(
            f"Volume is smaller than the minimum size specified in image metadata. Volume "
            f"size is {size_gib * GiB} bytes, minimum size is {image.min_disk * GiB} bytes."
        )
    if _image_bytes(image) > size_gib * GiB:
        raise InvalidRequest(
            f"Image {image.id} is unacceptable: Image virtual size is "
            f"{math.ceil(_image_bytes(image) / GiB)}GB and doesn't fit in a volume of size "
            f"{size_gib}GB."
        )


def check_flavor_holds(image: ImageRecord, *, disk_gib: int) -> None:
    """Nova's FlavorDiskSmallerThanImage and FlavorDiskSmallerThanMinDisk, in its order.
    Nova compares the image's stored size; the root volume holds the image converted to
    raw, so bootvol compares its virtual size."""
    if _image_bytes(image) > disk_gib * GiB:
        raise InvalidRequest(
            f"Flavor's disk is too small for requested image. Flavor disk is "
            f"{disk_gib * GiB} bytes, image is {_image_bytes(image)} bytes."
        )
    if image.min_disk > disk_gib:
        raise InvalidRequest(
            f"Flavor's disk is smaller than the minimum size specified in image metadata. "
            f"Flavor disk is {disk_gib * GiB} bytes, minimum size is {image.min_disk * GiB} bytes."
        )
