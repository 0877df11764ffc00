"""Reading a remote (http) image's bytes for a client that downloads it through the API.

Glance proxies the bytes of an image whose location is remote; bootvol does the same,
streaming, so an image of any size costs one buffer of memory.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx

from bootvol.errors import StorageError
from bootvol.images.transfer import CHUNK_SIZE

_TIMEOUT = httpx.Timeout(connect=10.0, read=60.0, write=60.0, pool=10.0)


def remote_chunks(url: str, *, what: str) -> Iterator[bytes]:
    try:
        with (
            httpx.Client(timeout=_TIMEOUT, follow_redirects=True) as client,
            client.stream("GET", url) as response,
        ):
            if response.status_code != 200:
                raise StorageError(
                    f"{what}: GET {url} answered {response.status_code} {response.reason_phrase}"
                )
            yield from response.iter_raw(CHUNK_SIZE)
    except httpx.HTTPError as exc:
        raise StorageError(f"{what}: reading {url} failed: {exc}") from exc
