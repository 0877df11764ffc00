"""Fetching an image's bytes from where its record says they are, verified on the way.

This is the flowchart's last resort: bytes cross this host (a socket or a file read, then a
file write), are hashed as they pass, and are refused if they differ from the record.
"""

from __future__ import annotations

import functools
import ssl
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import httpx

from bootvol.config import DownloadSettings
from bootvol.errors import InvalidRequest, StorageError
from bootvol.images.transfer import (
    CHUNK_SIZE,
    Digest,
    Progress,
    read_chunks,
    stream_to_file,
    verify,
)


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
    timeouts: DownloadSettings = DownloadSettings(),
) -> Fetched:
    """Copy the bytes at ``location`` (http(s) URL or local file) into ``destination``."""
    expected = _strongest_hash(expected)
    hashes = [name for name in ("md5", "sha512") if getattr(expected, name)]
    if urlparse(location).scheme in ("http", "https"):
        chunks = http_chunks(location, what=what, timeouts=timeouts)
        digest = stream_to_file(chunks, destination, progress=progress, hashes=hashes)
        host_bytes = digest.size  # written to the file; the socket reads are not file I/O
    else:
        chunks = read_chunks(Path(location))
        digest = stream_to_file(chunks, destination, progress=progress, hashes=hashes)
        host_bytes = 2 * digest.size  # read from the image file, written to the new one
    verify(digest, size=expected.size, md5=expected.md5, sha512=expected.sha512, what=what)
    return Fetched(digest=digest, host_bytes=host_bytes)


def _httpx_timeout(timeouts: DownloadSettings) -> httpx.Timeout:
    """A stalled server must not hold a creation forever: connect fast, and give up when no
    byte arrives for ``read_timeout_seconds``."""
    read = timeouts.read_timeout_seconds
    return httpx.Timeout(connect=timeouts.connect_timeout_seconds, read=read, write=read, pool=10.0)


def _strongest_hash(expected: Expected) -> Expected:
    """Verify against the strongest hash the record holds, as python-glanceclient does: the
    multihash (os_hash_value) when there is one, the md5 checksum only as a fallback.
    Computing both would spend a second pass of CPU over every byte for no extra safety."""
    if expected.sha512:
        return Expected(size=expected.size, md5=None, sha512=expected.sha512)
    return expected


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    """httpx's default verification, built once: a new client builds it again by default,
    loading the CA bundle each time (some 15-30 ms, paid by every download)."""
    return httpx.create_ssl_context()


def http_chunks(
    url: str, *, what: str, timeouts: DownloadSettings = DownloadSettings()
) -> Iterator[bytes]:
    """The body of ``GET url`` in chunks of about CHUNK_SIZE; errors say what to check."""
    client_options = {"follow_redirects": True, "verify": _ssl_context()}
    try:
        with (
            httpx.Client(timeout=_httpx_timeout(timeouts), **client_options) as client,
            client.stream("GET", url) as response,
        ):
            if response.status_code != 200:
                raise InvalidRequest(
                    f"{what}: GET {url} answered {response.status_code} {response.reason_phrase}"
                )
            yield from _coalesce(response.iter_raw(), CHUNK_SIZE)
    except httpx.TimeoutException as exc:
        raise StorageError(
            f"{what}: {url} sent nothing for {timeouts.read_timeout_seconds:g} s "
            "(the image server stalled); "
            "check that server, or raise [download] read_timeout_seconds"
        ) from exc
    except httpx.HTTPError as exc:
        raise StorageError(
            f"{what}: downloading {url} failed: {exc or type(exc).__name__}; "
            "check that the image server is up and serves the whole file"
        ) from exc


def _coalesce(pieces: Iterable[bytes], size: int) -> Iterator[bytes]:
    """Join the socket's pieces (64 KiB each from httpcore) into chunks of about ``size``.

    httpx's own re-chunking (``iter_raw(size)``) appends into a buffer and slices it again
    for every piece; on a 512 MiB image over loopback that costs 0.35 s more than the
    transfer itself (0.56 s against 0.20 s here). One join per chunk copies each byte once.
    """
    parts: list[bytes] = []
    gathered = 0
    for piece in pieces:
        parts.append(piece)
        gathered += len(piece)
        if gathered >= size:
            yield b"".join(parts)
            parts, gathered = [], 0
    if parts:
        yield b"".join(parts)
