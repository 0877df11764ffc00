"""Cache-aware placement spreads: 100 volumes of one image over the API land on every FlexVol,
and each FlexVol fills its cache with the image once (then clones from it). Here one volume
is past the margin, so the spread is even; tests/volumes/test_paths.py tests the margin."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from bootvol.db.models import VolumeStatus
from bootvol.images.service import ImageCreate
from bootvol.volumes.records import ProvisioningPath

from .conftest import Service

VOLUMES = 100


def test_volumes_of_one_image_spread_with_one_cache_fill_per_flexvol(
    make_service: Callable[..., Service], mounts: dict[str, Path]
) -> None:
    tag = f"spread-{os.urandom(3).hex()}"
    # As the embedded default has them: the image store holds volumes too.
    flexvols = {
        "images": ("svm1", mounts["xfs_a"] / tag / "images"),
        "vol_a": ("svm1", mounts["xfs_b"] / tag / "vol_a"),
        "vol_b": ("svm1", mounts["btrfs"] / tag / "vol_b"),
    }
    service = make_service(flexvols=flexvols)
    app = service.estate.app
    raw = service.estate.sample("disk.raw", size_mib=16)
    # qcow2, so that no FlexVol clones the image file directly: each one fills its cache.
    qcow2 = service.estate.sample_qcow2(raw, "disk.qcow2")
    image = app.images.create_from_file(ImageCreate(name="spread", disk_format="qcow2"), qcow2)
    password = service.add_member("spread", volumes=-1, gigabytes=-1)
    conn = service.connect(user="spread-user", password=password, project="spread")

    ids = [
        conn.block_storage.create_volume(size=1, image_id=image.id, name=f"v{n}").id
        for n in range(VOLUMES)
    ]
    records = [service.wait_for(volume_id) for volume_id in ids]

    assert {r.status for r in records} == {VolumeStatus.AVAILABLE}
    per_flexvol = Counter(r.flexvol for r in records)
    assert set(per_flexvol) == set(flexvols)
    # The margin (10 points) is a fifth of one 1 GiB volume on these 2 GiB FlexVols, so
    # each volume goes to the emptiest: an even spread, within one volume.
    assert max(per_flexvol.values()) - min(per_flexvol.values()) <= 1, per_flexvol
    fills = Counter(r.flexvol for r in records if r.provisioning and r.provisioning.filled_cache)
    assert fills == dict.fromkeys(flexvols, 1), fills
    paths = Counter(r.provisioning.path for r in records if r.provisioning)
    assert paths[ProvisioningPath.CACHE_CLONE] == VOLUMES - len(flexvols), paths
