"""Streaming image bytes into a file while hashing them, the one place bytes cross user space.

Uploads and downloads cannot avoid this process: the bytes arrive on a socket or a pipe and
must be hashed. Everything else (cache fills, clones, copy offload) goes through the kernel.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from bootvol.errors import ImageRefused, InvalidRequest, StorageError

CHUNK_SIZE = 1 << 20
HASH_ALGO = "sha512"  # Glance's default os_hash_algo

Progress = Callable[[int], None]  # called with the bytes written since the last call


@dataclass(frozen=True)
class Digest:
    size: int
    md5: str
    sha512: str


def stream_to_file(
    chunks: Iterable[bytes], destination: Path, *, progress: Progress | None = None
) -> Digest:
    """Write ``chunks`` into a new file, fsync it, and return its size and hashes.

    Raises StorageError (ENOSPC named as such); the caller owns removing the file, which
    always lies in a scratch folder.
    """
    md5, sha512 = hashlib.md5(usedforsecurity=False), hashlib.sha512()
    size = 0
    try:
        with open(destination, "xb") as out:
            for chunk in chunks:
                if not chunk:
                    continue
                if chunk == bytes(len(chunk)):
                    out.seek(len(chunk), os.SEEK_CUR)  # keep zeros as a hole, as qemu-img does
                else:
                    out.write(chunk)
                md5.update(chunk)
                sha512.update(chunk)
                size += len(chunk)
                if progress is not None:
                    progress(len(chunk))
            out.truncate(size)  # a trailing hole is not written: set the size
            out.flush()
            os.fsync(out.fileno())
    except OSError as exc:
        if exc.errno == 28:  # ENOSPC
            raise StorageError(f"no space left on the FlexVol writing {destination}") from exc
        raise StorageError(f"writing {destination} failed: {exc}") from exc
    return Digest(size=size, md5=md5.hexdigest(), sha512=sha512.hexdigest())


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
