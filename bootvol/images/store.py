"""Where uploaded image bytes live: files ``image-<id>`` on the image-store FlexVol.

On-disk invariants: ``image-<id>`` exists only with its complete, fsynced, inspected bytes
and is read-only (0444); an upload in progress lives in a scratch folder of the same
FlexVol and disappears with it if the upload fails or the process dies.

Glance's import stages bytes before checking them: ``staging/image-<id>`` exists only with
the complete, fsynced bytes a client staged (published like an image, from scratch), not
yet inspected. The import moves it back into a scratch folder before checking it, so that
it ends as ``image-<id>`` or is gone; deleting the image removes it too.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from bootvol.errors import Conflict, StorageError
from bootvol.images.inspect import inspect_image
from bootvol.images.transfer import Digest, Progress, hash_file, stream_to_file, verify
from bootvol.storage import qemu_img
from bootvol.storage.flexvol import FlexVol
from bootvol.storage.scratch import publish

IMAGE_FILE_PREFIX = "image-"
STAGING_FOLDER = "staging"


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

    def staged_path(self, image_id: str) -> Path:
        return self.flexvol.path / STAGING_FOLDER / f"{IMAGE_FILE_PREFIX}{image_id}"

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
            return self._check_and_publish(image_id, temporary, digest, disk_format=disk_format)

    def stage(
        self, image_id: str, chunks: Iterable[bytes], *, expected_size: int | None = None
    ) -> int:
        """Keep a client's bytes, unchecked, until its import (Glance's staging area);
        return their size. Nothing remains on failure."""
        self.flexvol.ensure()
        # The image's status admits one stage at a time; a file already here was left by a
        # process that died while importing it, and the rename below replaces it.
        staged = self.staged_path(image_id)
        staged.parent.mkdir(exist_ok=True)
        with self.flexvol.scratch() as scratch:
            temporary = scratch / "stage"
            # Hashed as the bytes arrive (a helper thread, no second read): the digest is
            # published beside the bytes, first, so staged bytes always have theirs.
            digest = stream_to_file(chunks, temporary, progress=None)
            verify(digest, size=expected_size, md5=None, sha512=None, what=f"image {image_id}")
            digest_file = scratch / "stage.digest"
            digest_file.write_text(json.dumps(dataclasses.asdict(digest)))
            publish(digest_file, self._staged_digest_path(image_id), read_only=True)
            publish(temporary, staged, read_only=True)
        return digest.size

    def has_staged(self, image_id: str) -> bool:
        return self.staged_path(image_id).is_file()

    def import_staged(self, image_id: str, *, disk_format: str) -> StoredImage:
        """Check the staged bytes as an upload's and store them (a rename, no copy). The
        staged file is gone afterwards, whether the bytes were stored or refused."""
        self.flexvol.ensure()
        with self.flexvol.scratch() as scratch:
            temporary = scratch / "upload"
            try:
                os.rename(self.staged_path(image_id), temporary)
            except FileNotFoundError:
                raise Conflict(
                    f"image {image_id} has no staged data: stage it again "
                    f"(PUT /v2/images/{image_id}/stage)"
                ) from None
            digest_path = self._staged_digest_path(image_id)
            try:
                digest = Digest(**json.loads(digest_path.read_text()))
            except OSError as exc:
                raise StorageError(
                    f"reading the digest of staged image {image_id}: {exc.strerror}"
                ) from exc
            finally:
                digest_path.unlink(missing_ok=True)
            return self._check_and_publish(image_id, temporary, digest, disk_format=disk_format)

    def unstage(self, image_id: str) -> None:
        self.staged_path(image_id).unlink(missing_ok=True)
        self._staged_digest_path(image_id).unlink(missing_ok=True)

    def _staged_digest_path(self, image_id: str) -> Path:
        return self.staged_path(image_id).with_name(f"{IMAGE_FILE_PREFIX}{image_id}.digest")

    def _check_and_publish(
        self, image_id: str, temporary: Path, digest: Digest, *, disk_format: str
    ) -> StoredImage:
        """The safety checks every image's bytes pass, then ``image-<id>`` appears."""
        inspected = inspect_image(temporary, declared_format=disk_format, what=f"image {image_id}")
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
        self.unstage(image_id)
