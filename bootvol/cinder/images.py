"""What Cinder tells a driver about an image → the workflow's ImageSource.

``clone_image`` receives ``image_location = (direct_url, locations)``: from Glance's
locations API (v2.17, for a service user) ``direct_url`` is None and ``locations`` is a
list of ``{"url": …, "metadata": {…}}``; from an older Glance, ``direct_url`` is the image's
one URL. A location names a file this host can read in two ways:

- ``file:///path``: Glance's file store; the path as this host sees it, if it is in a FlexVol;
- an NFS location as Cinder's NetApp driver accepts it: ``nfs://server/export/rel/path``,
  or its metadata ``{"type": "nfs", "share_location": "nfs://server/export",
  "mountpoint": …}``; the share is matched to a FlexVol by its configured ``export``
  (``server:/export``), and the file is found under that FlexVol's path here.

Locations no FlexVol holds are ignored: they are for Cinder's download.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote, urlparse

from bootvol.images.location import ImageLocation
from bootvol.storage.topology import Topology
from bootvol.volumes.workflow import ImageSource


def image_source(
    image_meta: Mapping[str, Any],
    *,
    location_file: Path | None = None,
) -> ImageSource:
    """The ImageSource of Cinder's ``image_meta``, with the file found for it (if any)."""
    sha512 = None
    if image_meta.get("os_hash_algo") == "sha512":
        sha512 = image_meta.get("os_hash_value")
    return ImageSource(
        id=str(image_meta["id"]),
        disk_format=str(image_meta.get("disk_format") or "raw"),
        location=ImageLocation.stored(location_file) if location_file else None,
        size=image_meta.get("size"),
        md5=image_meta.get("checksum"),
        sha512=sha512,
    )


def file_in_flexvol(topology: Topology, image_location: Any) -> Path | None:
    """The first location of Cinder's ``(direct_url, locations)`` that is a file in one of
    ``topology``'s FlexVols and exists, else None."""
    direct_url, locations = _unpack(image_location)
    candidates: list[tuple[str, Mapping[str, Any]]] = []
    if direct_url:
        candidates.append((direct_url, {}))
    for location in locations:
        if isinstance(location, Mapping) and location.get("url"):
            candidates.append((str(location["url"]), location.get("metadata") or {}))
    for url, metadata in candidates:
        path = _local_path(topology, url, metadata)
        if path is not None and _may_read(topology, path):
            return path
    return None


def _may_read(topology: Topology, path: Path) -> bool:
    """A regular file in a FlexVol that is no volume, snapshot or bootvol state: a location
    is written by an image's owner in some Glance setups, and must not name another
    project's volume (OSSN-0065)."""
    if ".." in path.parts or topology.flexvol_holding(path) is None or not path.is_file():
        return False
    if path.name.startswith(("volume-", "snapshot-")):
        return False
    return ".bootvol" not in path.resolve().parts


def _unpack(image_location: Any) -> tuple[str | None, Iterable[Any]]:
    if not image_location:
        return None, []
    direct_url, locations = image_location
    return direct_url, locations or []


def _local_path(topology: Topology, url: str, metadata: Mapping[str, Any]) -> Path | None:
    parsed = urlparse(url)
    if parsed.scheme == "file":
        return Path(unquote(parsed.path))
    if parsed.scheme != "nfs":
        return None
    share = metadata.get("share_location") if metadata.get("type") == "nfs" else None
    file = PurePosixPath(unquote(parsed.path))
    for flexvol in topology:
        if flexvol.export is None:
            continue
        server, _, export = flexvol.export.partition(":")
        export_path = PurePosixPath(export)
        if share and _nfs_share(share) != (server, export_path):
            continue
        if parsed.hostname != server or not file.is_relative_to(export_path):
            continue
        return flexvol.path / file.relative_to(export_path)
    return None


def _nfs_share(url: str) -> tuple[str | None, PurePosixPath]:
    parsed = urlparse(url)
    return parsed.hostname, PurePosixPath(unquote(parsed.path))
