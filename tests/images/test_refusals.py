"""Bad input is refused with a clear message and leaves nothing behind."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest

from bootvol.db.models import ImageStatus, VolumeRecord, VolumeStatus
from bootvol.errors import ImageRefused, InsufficientSpace, InvalidRequest, NotFound
from bootvol.images.service import ImageCreate
from bootvol.volumes.service import VolumeCreate

from ..support import Estate


def leftovers(estate: Estate) -> list[Path]:
    """Image, cache, volume and scratch files in every FlexVol."""
    found: list[Path] = []
    for folder in estate.flexvols.values():
        found += [p for p in folder.glob("*") if p.is_file()]
        found += list((folder / ".bootvol" / "tmp").glob("*"))
    return found


def qemu_img(*args: str) -> None:
    subprocess.run(["qemu-img", *args], check=True, capture_output=True)


def test_qcow2_with_backing_file_is_refused(estate: Estate) -> None:
    base = estate.sample("base.raw", size_mib=1)
    child = estate.workdir / "child.qcow2"
    qemu_img("create", "-q", "-f", "qcow2", "-b", str(base), "-F", "raw", str(child))
    with pytest.raises(ImageRefused, match="backing file"):
        estate.app.images.create_from_file(ImageCreate(name="c", disk_format="qcow2"), child)
    assert estate.app.images.list() == []
    assert leftovers(estate) == []


def test_qcow2_with_external_data_file_is_refused(estate: Estate) -> None:
    image = estate.workdir / "ext.qcow2"
    qemu_img(
        "create",
        "-q",
        "-f",
        "qcow2",
        "-o",
        f"data_file={estate.workdir / 'd.raw'}",
        str(image),
        "16M",
    )
    with pytest.raises(ImageRefused, match=r"data.file|data_file"):
        estate.app.images.create_from_file(ImageCreate(name="e", disk_format="qcow2"), image)
    assert leftovers(estate) == []


def test_vmdk_extent_outside_the_file_is_refused(estate: Estate) -> None:
    descriptor = estate.workdir / "evil.vmdk"
    descriptor.write_text(
        "# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\n"
        'createType="monolithicFlat"\n\n# Extent description\n'
        'RW 2048 FLAT "/etc/passwd" 0\n\n# The Disk Data Base\n#DDB\n'
        'ddb.adapterType = "ide"\n'
    )
    # A flat descriptor's extents name host files: refused for its subformat, before any
    # extent is followed.
    with pytest.raises(ImageRefused, match="unsafe vmdk"):
        estate.app.images.create_from_file(ImageCreate(name="v", disk_format="vmdk"), descriptor)
    assert leftovers(estate) == []


def test_real_format_must_match_disk_format(estate: Estate) -> None:
    raw = estate.sample("disk.raw", size_mib=4)
    qcow2 = estate.sample_qcow2(raw, "disk.qcow2")
    with pytest.raises(ImageRefused, match="declared disk_format is raw but the content is qcow2"):
        estate.app.images.create_from_file(ImageCreate(name="x", disk_format="raw"), qcow2)
    with pytest.raises(ImageRefused, match="content is raw"):
        estate.app.images.create_from_file(ImageCreate(name="y", disk_format="qcow2"), raw)
    assert estate.app.images.list() == []
    assert leftovers(estate) == []


def test_truncated_upload_is_refused_and_kills_the_image(estate: Estate) -> None:
    raw = estate.sample("disk.raw", size_mib=4)
    record = estate.app.images.create(ImageCreate(name="t", disk_format="raw"))
    with pytest.raises(InvalidRequest, match="truncated"):
        estate.app.images.upload(
            record.id, [raw.read_bytes()[:1000]], expected_size=raw.stat().st_size
        )
    assert estate.app.images.get(record.id).status == ImageStatus.KILLED
    assert leftovers(estate) == []


def test_remote_checksum_mismatch_fails_the_volume_and_leaves_no_cache(estate: Estate) -> None:
    estate.sample("disk.raw", size_mib=4)  # served at disk.raw
    image = estate.app.images.create(
        ImageCreate(
            name="r",
            disk_format="raw",
            url=estate.url("disk.raw"),
            checksum=hashlib.md5(b"something else").hexdigest(),
        )
    ).id
    volume = estate.app.volumes.create(VolumeCreate(image=image, size_gib=1, flexvol="vol_a"))
    assert volume.status == VolumeStatus.ERROR
    assert "md5 checksum" in volume.message
    assert leftovers(estate) == []


def test_remote_sha512_is_verified_instead_of_the_md5(estate: Estate) -> None:
    # Glance's os_hash_value (sha512) is the hash checked when the record has one: a right
    # md5 does not let through bytes whose sha512 differs, and a right sha512 alone passes.
    raw = estate.sample("disk.raw", size_mib=4)
    right_md5 = hashlib.md5(raw.read_bytes()).hexdigest()

    def volume_of(**hashes: str) -> VolumeRecord:
        image = estate.app.images.create(
            ImageCreate(name="r", disk_format="raw", url=estate.url("disk.raw"), **hashes)
        )
        assert image.os_hash_algo == "sha512"
        return estate.app.volumes.create(VolumeCreate(image=image.id, size_gib=1, flexvol="vol_a"))

    wrong = volume_of(checksum=right_md5, os_hash_value=hashlib.sha512(b"other").hexdigest())
    assert wrong.status == VolumeStatus.ERROR and "sha512" in wrong.message
    assert leftovers(estate) == []
    right = volume_of(os_hash_value=hashlib.sha512(raw.read_bytes()).hexdigest())
    assert right.status == VolumeStatus.AVAILABLE


def test_promised_hashes_must_be_hex_digests_of_their_length(estate: Estate) -> None:
    url = estate.url("disk.raw")
    with pytest.raises(InvalidRequest, match="128 hexadecimal digits"):
        estate.app.images.create(
            ImageCreate(name="r", disk_format="raw", url=url, os_hash_value="abc")
        )
    with pytest.raises(InvalidRequest, match="only for a remote image"):
        estate.app.images.create(ImageCreate(name="r", disk_format="raw", checksum="0" * 32))


def test_remote_source_that_ends_early_fails_the_volume(estate: Estate) -> None:
    raw = estate.sample("disk.raw", size_mib=4)
    image = estate.app.images.create(
        ImageCreate(
            name="r", disk_format="raw", url=estate.url("disk.raw"), size=raw.stat().st_size + 4096
        )
    ).id
    volume = estate.app.volumes.create(VolumeCreate(image=image, size_gib=1, flexvol="vol_a"))
    assert volume.status == VolumeStatus.ERROR
    assert "truncated" in volume.message
    assert leftovers(estate) == []


def test_remote_source_that_lies_about_its_format_is_refused(estate: Estate) -> None:
    raw = estate.sample("disk.raw", size_mib=4)
    estate.sample_qcow2(raw, "disk.qcow2")
    image = estate.app.images.create(
        ImageCreate(name="r", disk_format="raw", url=estate.url("disk.qcow2"))
    ).id
    volume = estate.app.volumes.create(VolumeCreate(image=image, size_gib=1, flexvol="vol_a"))
    assert volume.status == VolumeStatus.ERROR
    assert "content is qcow2" in volume.message
    assert leftovers(estate) == []


def test_image_larger_than_any_flexvol_is_refused(estate: Estate) -> None:
    huge = estate.workdir / "huge.qcow2"
    qemu_img("create", "-q", "-f", "qcow2", str(huge), "64G")
    image = estate.app.images.create_from_file(ImageCreate(name="h", disk_format="qcow2"), huge)
    assert image.virtual_size == 64 << 30
    before = leftovers(estate)
    with pytest.raises(InsufficientSpace, match="no FlexVol can hold"):
        estate.app.volumes.create(VolumeCreate(image=image.id, size_gib=64))
    with pytest.raises(InsufficientSpace, match="vol_a has"):
        estate.app.volumes.create(VolumeCreate(image=image.id, size_gib=64, flexvol="vol_a"))
    assert estate.app.volumes.list() == []
    assert leftovers(estate) == before  # only the uploaded image itself


def test_volume_smaller_than_the_image_is_refused(estate: Estate) -> None:
    small = estate.workdir / "two-gib.qcow2"
    qemu_img("create", "-q", "-f", "qcow2", str(small), "2G")
    image = estate.app.images.create_from_file(ImageCreate(name="s", disk_format="qcow2"), small)
    with pytest.raises(InvalidRequest, match="smaller than image"):
        estate.app.volumes.create(VolumeCreate(image=image.id, size_gib=1))
    assert estate.app.volumes.list() == []


def test_unknown_image_is_not_found(estate: Estate) -> None:
    with pytest.raises(NotFound, match="no image with id or name 'nope'"):
        estate.app.volumes.create(VolumeCreate(image="nope", size_gib=1))
