"""A volume's file: where it lives, how it is cut from a source, grown and removed.

Both the image flowchart (bootvol.volumes.workflow) and the volumes made from another volume
(bootvol.volumes.sources) end here: ``cut`` makes the file with the first clone kind that
works (reflink, qcow2 overlay, sparse copy), ``grow`` gives it its size.

On-disk names, per FlexVol: ``volume-<volume-id>`` is the volume's file; for a qcow2 overlay,
``.bootvol/bases/volume-<volume-id>.base`` is a hard link to the cache entry (or image file)
that backs it, so that the cleaner cannot free the blocks an overlay still reads. The Cinder
driver keeps snapshots beside their volume the same way, as ``snapshot-<snapshot-id>``.

Reversion strategy: a clone kind that fails removes what it made (``remove_files``) before
the next is tried; the last failure is raised as a StorageError.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bootvol.config import CloneMethod
from bootvol.errors import StorageError
from bootvol.storage import qemu_img
from bootvol.storage.flexvol import FlexVol
from bootvol.volumes.records import CloneKind, FileFormat, ProvisioningRecord, StepName


@dataclass(frozen=True)
class VolumeTarget:
    """The volume being made: its id, its FlexVol and the size it must end with."""

    volume_id: str
    flexvol: FlexVol
    size_bytes: int
    # Raises when this process may no longer write the volume's file (its claim was taken
    # over); called just before the file is made, after the long steps.
    check_claim: Callable[[], None] = lambda: None
    kind: str = "volume"  # the file name's prefix: "volume", or "snapshot" for the driver's

    @property
    def file(self) -> Path:
        return self.flexvol.path / f"{self.kind}-{self.volume_id}"

    @property
    def base_link(self) -> Path:
        """For a qcow2 overlay volume: a hard link that keeps its backing file alive."""
        return self.flexvol.bases_dir / f"{self.file.name}.base"

    def remove_files(self) -> None:
        self.file.unlink(missing_ok=True)
        self.base_link.unlink(missing_ok=True)


@dataclass(frozen=True)
class ProvisionedVolume:
    file: Path
    file_format: FileFormat
    record: ProvisioningRecord


def clone_kinds(
    flexvol: FlexVol,
    clone_method: CloneMethod,
    record: ProvisioningRecord,
    *,
    overlay_allowed: bool,
) -> list[CloneKind]:
    """The clone kinds to try, in order, for ``clone_method`` on ``flexvol``.

    ``auto`` tries reflink (where the filesystem can), then a qcow2 overlay, then a sparse
    copy. A volume cut from another volume must not be an overlay on it (the source is
    written to, and the overlay's reads would change with it): ``overlay_allowed=False``.
    """
    if clone_method is CloneMethod.AUTO:
        kinds = [CloneKind.REFLINK, CloneKind.QCOW2, CloneKind.COPY]
        if not flexvol.capabilities.reflink:
            kinds.remove(CloneKind.REFLINK)
            record.skip(
                CloneKind.REFLINK,
                f"{flexvol.name} is on {flexvol.capabilities.filesystem}, which cannot reflink",
            )
    else:
        kinds = [CloneKind(clone_method.value)]
    if not overlay_allowed and CloneKind.QCOW2 in kinds:
        kinds.remove(CloneKind.QCOW2)
        if clone_method is CloneMethod.QCOW2:
            record.skip(CloneKind.QCOW2, "an overlay on a writable volume would change with it")
    return kinds or [CloneKind.COPY]


def cut(
    source: Path, target: VolumeTarget, record: ProvisioningRecord, *, kinds: list[CloneKind]
) -> FileFormat:
    """Make ``target``'s file from ``source`` by the first of ``kinds`` that works; return the
    file's format. A kind that fails leaves nothing behind and is recorded as skipped."""
    for kind in kinds:
        try:
            with record.step(StepName.clone(kind)):
                file_format = _cut_with(kind, source, target, record)
        except (StorageError, OSError) as exc:
            target.remove_files()
            if kind is kinds[-1]:
                raise as_storage_error(exc) from exc
            record.skip(kind, f"failed: {exc}")
            continue
        record.clone_method = kind
        return file_format
    raise AssertionError("unreachable: the loop returns or raises")


def _cut_with(
    kind: CloneKind, source: Path, target: VolumeTarget, record: ProvisioningRecord
) -> FileFormat:
    flexvol = target.flexvol
    if kind is CloneKind.REFLINK:
        flexvol.clone_file(source, target.file)
        return FileFormat.RAW
    if kind is CloneKind.QCOW2:
        os.link(source, target.base_link)
        record.host_bytes += qemu_img.create_overlay(
            target.base_link, target.file, size_bytes=target.size_bytes
        )
        return FileFormat.QCOW2
    result = flexvol.copy_from(source, target.file)
    record.copy_method = str(result.method)
    record.host_bytes += result.host_bytes
    return FileFormat.RAW


def grow(flexvol: FlexVol, file: Path, *, file_format: FileFormat, size_bytes: int) -> None:
    """Give a volume's file ``size_bytes`` of virtual size: a sparse extend for raw, a
    resize of the qcow2 header otherwise (to its current size, a no-op)."""
    if file_format is FileFormat.RAW:
        flexvol.extend(file, size_bytes)
    else:
        qemu_img.resize(file, image_format=str(file_format), size_bytes=size_bytes)


def as_storage_error(exc: BaseException) -> StorageError:
    return exc if isinstance(exc, StorageError) else StorageError(f"clone failed: {exc}")
