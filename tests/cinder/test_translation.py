"""The driver's translations that need no Cinder: its options, Cinder's image locations,
and provisioning records as volume metadata."""

from __future__ import annotations

from pathlib import Path

import pytest

from bootvol.cinder import images, options, records
from bootvol.config import StorageSettings
from bootvol.storage.topology import Topology
from bootvol.volumes.records import FlowchartStep, ProvisioningPath, ProvisioningRecord, StepName

ESTATE = {
    "cluster": [{"name": "cluster1", "version": "9.14.1"}],
    "svm": [{"name": "svm1", "cluster": "cluster1", "vstorage": "true"}],
}


def _topology(tmp_path: Path) -> Topology:
    settings = options.parse(
        {
            **ESTATE,
            "flexvol": [
                {
                    "name": "images",
                    "svm": "svm1",
                    "path": str(tmp_path / "mnt-images"),
                    "export": "fileserver:/exports/images",
                    "volumes": "false",
                },
                {"name": "vol_a", "svm": "svm1", "path": str(tmp_path / "mnt-vol_a")},
            ],
        }
    )
    return Topology.from_settings(settings)


def test_options_become_storage_settings_with_typed_values() -> None:
    settings = options.parse(
        {
            **ESTATE,
            "flexvol": [
                {"name": "vol_a", "svm": "svm1", "path": "/mnt/a", "export": "fs:/exports/a"},
                {"name": "images", "svm": "svm1", "path": "/mnt/i", "volumes": "false"},
            ],
            "clone_method": "reflink",
        }
    )
    assert isinstance(settings, StorageSettings)
    assert settings.svm[0].vstorage is True
    assert [f.volumes for f in settings.flexvol] == [True, False]
    assert settings.flexvol[0].export == "fs:/exports/a"


@pytest.mark.parametrize(
    ("flexvol", "option", "words"),
    [
        ({"name": "vol_a", "svm": "nope", "path": "/a"}, "bootvol", "unknown svm 'nope'"),
        ({"name": "vol_a", "svm": "svm1", "path": "/a", "pth": "/b"}, "bootvol_flexvol", "pth"),
        (
            {"name": "vol_a", "svm": "svm1", "path": "/a", "export": "x"},
            "bootvol_flexvol",
            "export",
        ),
        ({"name": "vol_a", "svm": "svm1", "path": "/a", "volumes": "no"}, "bootvol", "no FlexVol"),
    ],
)
def test_a_wrong_estate_is_refused_naming_the_option(
    flexvol: dict[str, str], option: str, words: str
) -> None:
    with pytest.raises(options.OptionError) as caught:
        options.parse({**ESTATE, "flexvol": [flexvol]})
    assert caught.value.option == option
    assert words in str(caught.value)


def test_a_file_location_in_a_flexvol_is_found(tmp_path: Path) -> None:
    topology = _topology(tmp_path)
    image = tmp_path / "mnt-images" / "store" / "abc"
    image.parent.mkdir(parents=True)
    image.write_bytes(b"x")
    outside = tmp_path / "elsewhere"
    outside.write_bytes(b"x")
    assert images.file_in_flexvol(topology, (f"file://{image}", [])) == image
    assert images.file_in_flexvol(topology, (f"file://{outside}", [])) is None
    assert images.file_in_flexvol(topology, (f"file://{image}.missing", [])) is None
    locations = [{"url": "http://glance/x", "metadata": {}}, {"url": f"file://{image}"}]
    assert images.file_in_flexvol(topology, (None, locations)) == image
    assert images.file_in_flexvol(topology, None) is None


def test_a_location_never_names_a_volume_or_bootvol_state(tmp_path: Path) -> None:
    topology = _topology(tmp_path)
    pool = tmp_path / "mnt-vol_a"
    for name in ("volume-1", "snapshot-2", ".bootvol/bases/volume-1.base", "store/ok"):
        (pool / name).parent.mkdir(parents=True, exist_ok=True)
        (pool / name).write_bytes(b"x")
    for name in ("volume-1", "snapshot-2", ".bootvol/bases/volume-1.base", "store/../volume-1"):
        assert images.file_in_flexvol(topology, (f"file://{pool}/{name}", [])) is None, name
    assert images.file_in_flexvol(topology, (f"file://{pool}/store/ok", [])) == pool / "store/ok"


def test_an_nfs_location_is_found_under_the_flexvol_that_exports_it(tmp_path: Path) -> None:
    topology = _topology(tmp_path)
    image = tmp_path / "mnt-images" / "store" / "abc"
    image.parent.mkdir(parents=True)
    image.write_bytes(b"x")
    netapp_style = {
        "url": "nfs://fileserver/exports/images/store/abc",
        "metadata": {
            "type": "nfs",
            "share_location": "nfs://fileserver/exports/images",
            "mountpoint": "/var/lib/glance/images",  # Glance's mount, not ours
        },
    }
    assert images.file_in_flexvol(topology, (None, [netapp_style])) == image
    other_server = {"url": "nfs://otherserver/exports/images/store/abc", "metadata": {}}
    assert images.file_in_flexvol(topology, (None, [other_server])) is None


def test_image_meta_becomes_an_image_source(tmp_path: Path) -> None:
    meta = {
        "id": "img1",
        "disk_format": "qcow2",
        "size": 42,
        "checksum": "md5sum",
        "os_hash_algo": "sha512",
        "os_hash_value": "sha",
    }
    source = images.image_source(meta, location_file=tmp_path / "f")
    assert (source.id, source.disk_format, source.size, source.md5, source.sha512) == (
        "img1",
        "qcow2",
        42,
        "md5sum",
        "sha",
    )
    assert source.file == tmp_path / "f"
    assert images.image_source(meta).file is None


def test_a_record_fits_cinder_metadata_and_keeps_the_users_keys() -> None:
    record = ProvisioningRecord(path=ProvisioningPath.DOWNLOAD, source="image x", host_bytes=7)
    record.skip(FlowchartStep.CACHE_CLONE, "no cache entry " + "y" * 400)
    with record.step(StepName.DOWNLOAD, detail="d"):
        pass
    existing = {"owner": "me", "bootvol:path": "cache-clone", "bootvol:stale": "old"}
    metadata = records.merged(existing, record)
    assert metadata["owner"] == "me"
    assert "bootvol:stale" not in metadata
    assert metadata["bootvol:path"] == "download"
    assert metadata["bootvol:host_bytes"] == "7"
    assert metadata["bootvol:skipped:cache-clone"].endswith("…")
    assert metadata["bootvol:steps"].startswith("download ")
    assert all(len(k) <= 255 and len(v) <= 255 for k, v in metadata.items())
