"""Fetching an image's bytes from where its record says they are, verified on the way.

This is the flowchart's last resort: bytes cross this host (a socket or a file read, then a
file write), are hashed as they pass, and are refused if they differ from the record. A local
file with no hash to check (one its caller already verified, as Cinder does with the image it
downloads) is copied by the kernel instead, its size still checked.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bootvol.config import DownloadSettings
from bootvol.errors import InvalidRequest
from bootvol.images.location import ImageLocation, LocationKind
from bootvol.images.transfer import (
    Digest,
    Progress,
    stream_to_file,
    verify,
)
from bootvol.storage.copy import CopyResult, sparse_copy


@dataclass(frozen=True)
class Expected:
    size: int | None
    md5: str | None
    sha512: str | None


@dataclass(frozen=True)
class Fetched:
    digest: Digest
    host_bytes: int  # bytes read from / written to files through our buffers


def fetch(
    location: ImageLocation,
    destination: Path,
    *,
    expected: Expected,
    what: str,
    progress: Progress | None = None,
    timeouts: DownloadSettings = DownloadSettings(),
) -> Fetched:
    """Copy the bytes at ``location`` (http(s) URL or local file) into ``destination``."""
    expected = _strongest_hash(expected)
    hashes = [name for name in ("md5", "sha512") if getattr(expected, name)]
    if location.file is not None and not hashes:
        copied = _kernel_copy(location.file, destination, what=what)
        digest = Digest(size=destination.stat().st_size, md5=None, sha512=None)
        verify(digest, size=expected.size, md5=None, sha512=None, what=what)
        return Fetched(digest=digest, host_bytes=copied.host_bytes)
    chunks = location.chunks(what=what, timeouts=timeouts)
    digest = stream_to_file(chunks, destination, progress=progress, hashes=hashes)
    # Over HTTP only the file write counts (socket reads are not file I/O); from a file,
    # the read counts too.
    host_bytes = digest.size if location.kind is LocationKind.HTTP else 2 * digest.size
    verify(digest, size=expected.size, md5=expected.md5, sha512=expected.sha512, what=what)
    return Fetched(digest=digest, host_bytes=host_bytes)


def _kernel_copy(source: Path, destination: Path, *, what: str) -> CopyResult:
    try:
        return sparse_copy(source, destination)
    except OSError as exc:
        raise InvalidRequest(f"{what}: cannot read {source}: {exc.strerror}") from exc


def _strongest_hash(expected: Expected) -> Expected:
    """Verify against the strongest hash the record holds, as python-glanceclient does: the
    multihash (os_hash_value) when there is one, the md5 checksum only as a fallback.
    Computing both would spend a second pass of CPU over every byte for no extra safety."""
    if expected.sha512:
        return Expected(size=expected.size, md5=None, sha512=expected.sha512)
    return expected
