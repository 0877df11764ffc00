"""Where an image's bytes are, as Glance's locations API shows them to other services.

Glance v2.17's ``GET /v2/images/{id}/locations`` (service role only, OSSN-0065) answers a
list of ``{"url", "metadata"}``. For an image whose bytes are a file in a FlexVol, bootvol
lists that file twice:

- ``file:///abs/path`` with ``{"store": "file"}``, as Glance's file store does: a Cinder on a
  host that sees the FlexVol's folder at the same path clones the file from there;
- when the FlexVol is exported over NFS (``[[flexvol]] export = "server:/path"``), the shape
  Cinder's NetApp NFS driver accepts and compares with its own shares:
  ``nfs://server/path/<file relative to the FlexVol>`` with ``{"type": "nfs",
  "share_location": "nfs://server/path", "mountpoint": "/path"}``.

The ``mountpoint`` is the export's path, the folder the URL's path is relative to: NetApp's
``_construct_image_nfs_url`` (cinder/volume/drivers/netapp/dataontap/nfs_base.py) takes the
URL's path relative to ``mountpoint`` and appends it to ``share_location``. With the
FlexVol's local folder there it would build ``nfs://server/path/../../path/<file>``, which
matches no share it has mounted.

A remote image is its URL with no metadata; an image without bytes yet has no location.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from urllib.parse import quote

from bootvol.images.location import ImageLocation
from bootvol.storage.flexvol import FlexVol
from bootvol.storage.topology import Topology


@dataclass(frozen=True)
class PublishedLocation:
    url: str
    metadata: Mapping[str, str] = field(default_factory=dict)


def published_locations(
    location: ImageLocation | None, topology: Topology
) -> list[PublishedLocation]:
    if location is None:
        return []
    file = location.file
    if file is None:
        return [PublishedLocation(url=location.url)]
    published = [PublishedLocation(url=location.url, metadata={"store": "file"})]
    flexvol = topology.flexvol_holding(file)
    if flexvol is not None and flexvol.export is not None:
        published.append(_nfs_location(file, flexvol, flexvol.export))
    return published


def _nfs_location(file: Path, flexvol: FlexVol, export: str) -> PublishedLocation:
    server, _, export_path = export.partition(":")
    mountpoint = PurePosixPath(export_path)  # "/exports/images/" → "/exports/images"
    share = f"nfs://{server}{quote(str(mountpoint))}"
    relative = file.resolve().relative_to(flexvol.path.resolve())
    return PublishedLocation(
        url=f"{share.rstrip('/')}/{quote(relative.as_posix())}",
        metadata={"type": "nfs", "share_location": share, "mountpoint": str(mountpoint)},
    )
