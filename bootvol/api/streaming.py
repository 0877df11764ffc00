"""Request bodies streamed into synchronous services without buffering them whole.

``octet_stream`` takes an image's bytes from a PUT (Glance's upload and stage alike). Uploads
arrive as an async stream of small chunks; the image service consumes a plain
iterator in a worker thread. ``blocking_chunks`` is that bridge: each ``next()`` hops to the
event loop for about a MiB of body, so memory stays bounded whatever the image's size.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import anyio.from_thread
from fastapi import Request

from bootvol.errors import UnsupportedMediaType

BLOCK_SIZE = 1 << 20


async def _next_block(stream: AsyncIterator[bytes]) -> bytes | None:
    parts: list[bytes] = []
    size = 0
    while size < BLOCK_SIZE:
        try:
            chunk = await stream.__anext__()
        except StopAsyncIteration:
            break
        parts.append(chunk)
        size += len(chunk)
    return b"".join(parts) if parts else None


def blocking_chunks(stream: AsyncIterator[bytes]) -> Iterator[bytes]:
    """Iterate an async byte stream from a worker thread (one started by anyio)."""
    while (block := anyio.from_thread.run(_next_block, stream)) is not None:
        yield block


# The OpenAPI description of such a body, for the routes that take one.
OCTET_STREAM_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    }
}


@dataclass(frozen=True)
class OctetStream:
    chunks: Iterator[bytes]  # to be consumed in a worker thread
    expected_size: int | None  # as announced, checked against what arrives


def octet_stream(request: Request) -> OctetStream:
    """An ``application/octet-stream`` body (else 415) and the size its client announced:
    Glance's ``X-OpenStack-Image-Size`` (openstacksdk, glanceclient), else Content-Length."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip()
    if media_type != "application/octet-stream":
        raise UnsupportedMediaType(
            f"Unsupported Content-Type {media_type or '(none)'!r}: use application/octet-stream"
        )
    length = request.headers.get("x-openstack-image-size") or request.headers.get("content-length")
    return OctetStream(
        chunks=blocking_chunks(request.stream().__aiter__()),
        expected_size=int(length) if length and length.isdigit() else None,
    )
