"""Where uploaded image bytes live: files ``image-<id>`` on the image-store FlexVol.

On-disk invariants: ``image-<id>`` exists only with its complete, fsynced, inspected bytes
and is read-only (0444); an upload in progress lives in a scratch folder of the same
FlexVol and disappears with it if the upload fails or the process dies.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from bootvol.errors import StorageError
from bootvol.images.inspect import inspect_image
from bootvol.images.transfer import Digest, Progress, hash_file, stream_to_file, verify
from bootvol.storage import qemu_img
from bootvol.storage.flexvol import FlexVol
from bootvol.storage.scratch import publish

IMAGE_FILE_PREFIX = "image-"


@dataclass(frozen=True)
class StoredImage:
    path: Path
    digest: Digest
    virtual_size: int


class ImageStore:
    def __init__(self, flexvol: FlexVol) -> None:
        self.flexvol = flexvol

    def path_for(self, image_id: str) -> Path:
        return self.flexvol.path / f"{IMAGE_FILE_PREFIX}{image_id}"

    def upload(
        self,
        image_id: str,
        chunks: Iterable[bytes],
        *,
        disk_format: str,
        expected_size: int | None = None,
        progress: Progress | None = None,
    ) -> StoredImage:
        """Store an image's bytes atomically after checking them; nothing remains on failure."""
        self.flexvol.ensure()
        what = f"image {image_id}"
        with self.flexvol.scratch() as scratch:
            temporary = scratch / "upload"
            digest = stream_to_file(chunks, temporary, progress=progress)
            verify(digest, size=expected_size, md5=None, sha512=None, what=what)
            inspected = inspect_image(temporary, declared_format=disk_format, what=what)
            final = self.path_for(image_id)
            publish(temporary, final, read_only=True)
        return StoredImage(path=final, digest=digest, virtual_size=inspected.virtual_size)

    def store_file(self, image_id: str, source: Path, *, source_format: str) -> StoredImage:
        """Store a raw copy of ``source`` (a volume's file): a reflink where the image store
        shares its filesystem, else a sparse copy in the kernel, or a conversion to raw for
        a qcow2 overlay; then hashed (Glance's checksum and os_hash_value) and published."""
        self.flexvol.ensure()
        what = f"image {image_id}"
        with self.flexvol.scratch() as scratch:
            temporary = scratch / "from-volume"
            try:
                if source_format == "raw":
                    self.flexvol.copy_from(source, temporary)
                else:
                    described, _ = qemu_img.info(source, image_format=source_format)
                    size = int(described["virtual-size"])
                    qemu_img.convert_to_raw(
                        source, temporary, source_format=source_format, virtual_size=size
                    )
            except OSError as exc:
                raise StorageError(f"{what}: cannot copy {source}: {exc.strerror}") from exc
            digest = hash_file(temporary)
            inspected = inspect_image(temporary, declared_format="raw", what=what)
            final = self.path_for(image_id)
            publish(temporary, final, read_only=True)
        return StoredImage(path=final, digest=digest, virtual_size=inspected.virtual_size)

    def delete(self, image_id: str) -> None:
        self.path_for(image_id).unlink(missing_ok=True)
