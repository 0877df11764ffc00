"""Fetching an image's bytes from where its record says they are, verified on the way.

This is the flowchart's last resort: bytes cross this host (a socket or a file read, then a
file write), are hashed as they pass, and are refused if they differ from the record.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import httpx

from bootvol.errors import InvalidRequest, StorageError
from bootvol.images.transfer import (
    CHUNK_SIZE,
    Digest,
    Progress,
    read_chunks,
    stream_to_file,
    verify,
)

# A stalled server must not hold a creation forever: connect fast, and give up when no
# byte arrives for a minute.
_TIMEOUT = httpx.Timeout(connect=10.0, read=60.0, write=60.0, pool=10.0)


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
    location: str,
    destination: Path,
    *,
    expected: Expected,
    what: str,
    progress: Progress | None = None,
) -> Fetched:
    """Copy the bytes at ``location`` (http(s) URL or local file) into ``destination``."""
    if urlparse(location).scheme in ("http", "https"):
        digest = stream_to_file(_http_chunks(location, what=what), destination, progress=progress)
        host_bytes = digest.size  # written to the file; the socket reads are not file I/O
    else:
        digest = stream_to_file(read_chunks(Path(location)), destination, progress=progress)
        host_bytes = 2 * digest.size  # read from the image file, written to the new one
    verify(digest, size=expected.size, md5=expected.md5, sha512=expected.sha512, what=what)
    return Fetched(digest=digest, host_bytes=host_bytes)


def _http_chunks(url: str, *, what: str) -> Iterator[bytes]:
    try:
        with (
            httpx.Client(timeout=_TIMEOUT, follow_redirects=True) as client,
            client.stream("GET", url) as response,
        ):
            if response.status_code != 200:
                raise InvalidRequest(
                    f"{what}: GET {url} answered {response.status_code} {response.reason_phrase}"
                )
            yield from response.iter_raw(CHUNK_SIZE)
    except httpx.HTTPError as exc:
        raise StorageError(f"{what}: downloading {url} failed: {exc}") from exc
