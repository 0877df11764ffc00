"""Request bodies streamed into synchronous services without buffering them whole.

Uploads arrive as an async stream of small chunks; the image service consumes a plain
iterator in a worker thread. ``blocking_chunks`` is that bridge: each ``next()`` hops to the
event loop for about a MiB of body, so memory stays bounded whatever the image's size.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import anyio.from_thread

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
