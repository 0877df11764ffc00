"""Snapshots with the real `openstack` command: a snapshot keeps the volume's content of its
moment, a volume made from it has that content and shares its blocks, metadata and renames
work, the snapshots quota holds, and a volume with snapshots goes only with them (--purge)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from bootvol.bench.content import volume_sha256
from bootvol.units import MiB

from ..support import openstack_cli
from .conftest import Service


def _json(service: Service, *args: str) -> dict:  # type: ignore[type-arg]
    return json.loads(service.openstack(*args, "-f", "json").stdout)


def test_snapshot_lifecycle(service: Service) -> None:
    app = service.estate.app
    raw = service.estate.sample("d.raw", size_mib=4)
    service.openstack("image", "create", "--disk-format", "raw", "--file", str(raw), "img")
    made = _json(service, "volume", "create", "--image", "img", "--size", "1", "v")
    volume = service.wait_for(made["id"])
    before = volume_sha256(Path(volume.file), file_format=volume.file_format, length=4 * MiB)

    snap = _json(
        service, "volume", "snapshot", "create", "--volume", "v", "--property", "k=1", "s1"
    )
    assert snap["status"] == "available" and snap["size"] == 1
    record = app.volumes.snapshots.get(snap["id"])
    assert record.file and Path(record.file).name == f"snapshot-{snap['id']}"
    # The volume changes after the snapshot; the snapshot does not.
    fd = os.open(volume.file, os.O_WRONLY)
    try:
        os.pwrite(fd, b"changed after the snapshot", 0)
    finally:
        os.close(fd)
    listed = _json(service, "volume", "snapshot", "list")
    assert [(s["Name"], s["Status"]) for s in listed] == [("s1", "available")]
    service.openstack("volume", "snapshot", "set", "--name", "s2", "--property", "k=2", "s1")
    shown = _json(service, "volume", "snapshot", "show", "s2")
    assert shown["properties"] == {"k": "2"} or shown["properties"] == "k='2'"
    # The same rules as a volume's metadata: bootvol's keys and over-long ones are refused.
    for bad in ("bootvol:path=x", f"{'k' * 256}=1"):
        refused = service.openstack(
            "volume", "snapshot", "set", "--property", bad, "s2", check=False
        )
        assert refused.returncode != 0 and ("bootvol" in refused.stderr or "255" in refused.stderr)

    restored = _json(service, "volume", "create", "--snapshot", "s2", "--size", "1", "r")
    copy = service.wait_for(restored["id"])
    assert copy.status == "available" and copy.snapshot_id == snap["id"]
    assert copy.flexvol == volume.flexvol and copy.bootable
    assert volume_sha256(Path(copy.file), file_format=copy.file_format, length=4 * MiB) == before
    assert _json(service, "volume", "show", "r")["snapshot_id"] == snap["id"]

    # A volume with snapshots goes only with them.
    kept = service.openstack("volume", "delete", "v", check=False)
    assert kept.returncode != 0 and "snapshot" in kept.stderr
    service.openstack("volume", "delete", "--purge", "v")
    assert app.volumes.snapshots.of_volume(volume.id) == []
    assert not Path(record.file).exists()
    assert [v.id for v in app.volumes.list()] == [restored["id"]]


def test_snapshot_quota_and_status_rules(service: Service) -> None:
    service.add_member("team")
    service.openstack("quota", "set", "--snapshots", "1", "team")
    member = service.member_cloud("team", "pw-team")

    def run(*args: str, check: bool = True):  # type: ignore[no-untyped-def]
        return openstack_cli(member, *args, check=check)

    made = json.loads(run("volume", "create", "--size", "1", "v", "-f", "json").stdout)
    service.wait_for(made["id"])
    run("volume", "snapshot", "create", "--volume", "v", "a")
    over = run("volume", "snapshot", "create", "--volume", "v", "b", check=False)
    assert over.returncode != 0 and "SnapshotLimitExceeded" in over.stderr
    quota = json.loads(run("quota", "show", "--usage", "-f", "json").stdout)
    snapshots = next(row for row in quota if row["Resource"] == "snapshots")
    assert (snapshots["Limit"], snapshots["In Use"]) == (1, 1)
    # An attached volume is snapshotted only with --force (Cinder's rule).
    service.estate.app.volumes.attachments.reserve(made["id"], server_id=None)
    service.estate.app.volumes.attachments.attach(
        made["id"], server_id=None, device="/dev/vdb", host="h"
    )
    service.openstack("quota", "set", "--snapshots", "5", "team")
    busy = run("volume", "snapshot", "create", "--volume", "v", "c", check=False)
    assert busy.returncode != 0 and "force" in busy.stderr
    forced = json.loads(
        run("volume", "snapshot", "create", "--force", "--volume", "v", "c", "-f", "json").stdout
    )
    assert forced["status"] == "available"
