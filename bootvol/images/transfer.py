"""Streaming image bytes into a file while hashing them, where bytes cross user space.

Uploads, stages and downloads cannot avoid this process: the bytes arrive on a socket or a
pipe and must be hashed. Cache fills, clones and copy offload go through the kernel. The one
other reader is ``hash_file``: an image made from a volume needs Glance's md5 and sha512 of
bytes the kernel copied, and neither the kernel nor qemu-img computes those.

The hashes are computed in a helper thread while the caller's thread receives and writes:
hashlib releases the interpreter lock on buffers this size, so on two cores hashing costs
little more wall time than the transfer itself.
"""

from __future__ import annotations

import hashlib
import os
import queue
import threading
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from pathlib import Path

from bootvol.errors import ImageRefused, InvalidRequest, StorageError

CHUNK_SIZE = 1 << 20
HASH_ALGO = "sha512"  # Glance's default os_hash_algo
ALL_HASHES = ("md5", HASH_ALGO)  # what an image record holds: checksum and os_hash_value

Progress = Callable[[int], None]  # called with the bytes written since the last call


@dataclass(frozen=True)
class Digest:
    size: int
    md5: str | None  # None when not asked for
    sha512: str | None


class _Hasher:
    """Hashes chunks, in order, in a helper thread; ``finish`` returns the hex digests."""

    _QUEUE_DEPTH = 16  # chunks in flight: bounds memory to a few MiB

    def __init__(self, algorithms: Collection[str]) -> None:
        self._hashes = {
            name: hashlib.new(name, usedforsecurity=name != "md5") for name in algorithms
        }
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=self._QUEUE_DEPTH)
        self._failure: BaseException | None = None
        self._thread: threading.Thread | None = None
        if self._hashes:
            self._thread = threading.Thread(target=self._run, name="image-hash", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while (chunk := self._queue.get()) is not None:
            if self._failure is not None:
                continue  # keep draining, so that feed() never blocks for ever
            try:
                for digest in self._hashes.values():
                    digest.update(chunk)
            except BaseException as exc:  # re-raised by finish(), in the caller's thread
                self._failure = exc

    def feed(self, chunk: bytes) -> None:
        if self._thread is not None:
            self._queue.put(chunk)

    def finish(self) -> dict[str, str]:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
        if self._failure is not None:
            raise self._failure
        return {name: digest.hexdigest() for name, digest in self._hashes.items()}


def stream_to_file(
    chunks: Iterable[bytes],
    destination: Path,
    *,
    progress: Progress | None = None,
    hashes: Collection[str] = ALL_HASHES,
) -> Digest:
    """Write ``chunks`` into a new file and return its size and the ``hashes`` asked for.

    The file is not fsynced: it lies in a scratch folder, and whatever is made of it is
    published with storage.scratch.publish, which fsyncs before the rename.

    Raises StorageError (ENOSPC named as such); the caller owns removing the file, which
    always lies in a scratch folder.
    """
    hasher = _Hasher(hashes)
    size = 0
    try:
        with open(destination, "xb") as out:
            for chunk in chunks:
                if not chunk:
                    continue
                hasher.feed(chunk)
                if _all_zeros(chunk):
                    out.seek(len(chunk), os.SEEK_CUR)  # keep zeros as a hole, as qemu-img does
                else:
                    out.write(chunk)
                size += len(chunk)
                if progress is not None:
                    progress(len(chunk))
            out.truncate(size)  # a trailing hole is not written: set the size
    except OSError as exc:
        if exc.errno == 28:  # ENOSPC
            raise StorageError(f"no space left on the FlexVol writing {destination}") from exc
        raise StorageError(f"writing {destination} failed: {exc}") from exc
    finally:
        digests = hasher.finish()  # also on failure: the helper thread must end
    return Digest(size=size, md5=digests.get("md5"), sha512=digests.get("sha512"))


_ZEROS = bytes(CHUNK_SIZE)


def _all_zeros(chunk: bytes) -> bool:
    """Whether ``chunk`` holds only zeros: memcmp against one shared zero buffer, without
    copying it or allocating a new one per chunk (a fresh ``bytes(n)`` zeroes a MiB per MiB)."""
    if len(chunk) <= CHUNK_SIZE:
        return _ZEROS.startswith(chunk)
    # Longer chunks (joined from the socket's pieces): the first MiB, then the rest.
    return chunk.startswith(_ZEROS) and _all_zeros(chunk[CHUNK_SIZE:])


def hash_file(path: Path) -> Digest:
    """The size and hashes of a file already in place (an image made from a volume)."""
    hasher = _Hasher(ALL_HASHES)
    size = 0
    try:
        for chunk in read_chunks(path):
            hasher.feed(chunk)
            size += len(chunk)
    finally:
        digests = hasher.finish()
    return Digest(size=size, md5=digests.get("md5"), sha512=digests.get("sha512"))


def read_chunks(path: Path) -> Iterable[bytes]:
    with open(path, "rb") as source:
        while chunk := source.read(CHUNK_SIZE):
            yield chunk


def verify(
    digest: Digest,
    *,
    size: int | None,
    md5: str | None,
    sha512: str | None,
    what: str,
) -> None:
    """Refuse bytes whose size or hashes differ from what the image record promises."""
    if size is not None and digest.size != size:
        raise InvalidRequest(
            f"{what}: got {digest.size} bytes but the image record says {size}; "
            "the transfer was truncated or the source changed"
        )
    if md5 is not None and digest.md5 != md5:
        raise ImageRefused(f"{what}: md5 checksum {digest.md5} does not match recorded {md5}")
    if sha512 is not None and digest.sha512 != sha512:
        raise ImageRefused(f"{what}: sha512 hash does not match the recorded os_hash_value")
