"""Volumes that do not come from an image: a clone of another volume, or an empty one.

``clone_volume`` cuts the new volume from the source volume's file on the same FlexVol:
a reflink where the filesystem can (constant time, shared blocks), else a sparse copy in the
kernel (copy offload). A qcow2 overlay on the source is never used: a volume is written to,
and an overlay's reads would change with it. When the source is itself a qcow2 overlay on a
cache entry, the copy gets a hard link of its own to that entry and is rebased onto it, so
that deleting the source leaves the clone whole.

``empty_volume`` makes a sparse raw file of the size: nothing is written.

Reversion strategy: as in the workflow, a step that fails removes the volume file and base
link it made (VolumeTarget.remove_files) before raising.
"""

from __future__ import annotations

import os
from pathlib import Path

from bootvol.config import CloneMethod
from bootvol.errors import CloneNotSupported, StorageError
from bootvol.storage import qemu_img
from bootvol.volumes.records import FileFormat, ProvisioningPath, ProvisioningRecord, StepName
from bootvol.volumes.volume_file import (
    ProvisionedVolume,
    VolumeTarget,
    as_storage_error,
    clone_kinds,
    cut,
    grow,
)


def clone_volume(
    *,
    source_id: str,
    source_file: Path,
    source_format: FileFormat,
    target: VolumeTarget,
    clone_method: CloneMethod,
) -> ProvisionedVolume:
    record = ProvisioningRecord(source=f"volume {source_id}")
    kinds = clone_kinds(target.flexvol, clone_method, record, overlay_allowed=False)
    target.check_claim()
    cut(source_file, target, record, kinds=kinds)
    try:
        if source_format is FileFormat.QCOW2:
            _own_backing_file(source_file, target, record)
        with record.step(StepName.EXTEND):
            grow(
                target.flexvol,
                target.file,
                file_format=source_format,
                size_bytes=target.size_bytes,
            )
    except (StorageError, OSError) as exc:
        target.remove_files()
        raise as_storage_error(exc) from exc
    record.path = ProvisioningPath.VOLUME_CLONE
    return ProvisionedVolume(file=target.file, file_format=source_format, record=record)


def empty_volume(*, target: VolumeTarget) -> ProvisionedVolume:
    record = ProvisioningRecord(source="nothing (empty volume)")
    target.flexvol.ensure()
    target.check_claim()
    with record.step(StepName.CREATE_SPARSE_FILE):
        try:
            with open(target.file, "xb") as volume:
                volume.truncate(target.size_bytes)
        except OSError as exc:
            target.remove_files()
            raise StorageError(f"cannot create {target.file}: {exc.strerror}") from exc
    record.path = ProvisioningPath.EMPTY
    return ProvisionedVolume(file=target.file, file_format=FileFormat.RAW, record=record)


def _own_backing_file(source_file: Path, target: VolumeTarget, record: ProvisioningRecord) -> None:
    """Point the copied overlay at a hard link of its own to the source's backing file."""
    source_base = target.flexvol.bases_dir / f"{source_file.name}.base"
    if not source_base.exists():
        raise CloneNotSupported(f"the backing file of {source_file} is missing ({source_base})")
    with record.step(StepName.REBASE_OVERLAY):
        os.link(source_base, target.base_link)
        record.host_bytes += qemu_img.run(
            [
                "rebase",
                "-u",
                "-f",
                "qcow2",
                "-F",
                "raw",
                "-b",
                str(target.base_link),
                str(target.file),
            ],
            limits=qemu_img.INFO_LIMITS,
        ).host_bytes
