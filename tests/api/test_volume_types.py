"""Volume types with the real `openstack` command: __DEFAULT__ is a real type, admins make
types whose extra specs pin volumes to FlexVols, and types in use or the default stay."""

from __future__ import annotations

import json

from ..support import openstack_cli
from .conftest import Service


def _json(service: Service, *args: str) -> object:
    return json.loads(service.openstack(*args, "-f", "json").stdout)


def test_volume_types_steer_placement(service: Service) -> None:
    app = service.estate.app
    default = _json(service, "volume", "type", "show", "__DEFAULT__")
    assert default["name"] == "__DEFAULT__" and default["is_public"] in (True, "True")
    plain = _json(service, "volume", "create", "--size", "1", "plain")
    assert plain["type"] == "__DEFAULT__"
    assert app.volumes.get(plain["id"]).volume_type_id == default["id"]

    target = sorted(f.name for f in app.topology.volume_flexvols())[-1]
    service.openstack(
        "volume", "type", "create", "--property", f"bootvol:flexvol={target}", "pinned"
    )
    names = {t["Name"] for t in _json(service, "volume", "type", "list")}
    assert {"__DEFAULT__", "pinned"} <= names
    for n in range(3):
        made = _json(service, "volume", "create", "--type", "pinned", "--size", "1", f"p{n}")
        assert made["type"] == "pinned"
        assert service.wait_for(made["id"]).flexvol == target

    service.openstack("volume", "type", "create", "--property", "bootvol:flexvol=nowhere", "bad")
    refused = service.openstack(
        "volume", "create", "--type", "bad", "--size", "1", "x", check=False
    )
    assert refused.returncode != 0 and "no FlexVol meets" in refused.stderr
    malformed = service.openstack(
        "volume", "type", "create", "--property", "capabilities:reflink=maybe", "odd", check=False
    )
    assert malformed.returncode != 0 and "capabilities:reflink" in malformed.stderr

    member = service.member_cloud("team", service.add_member("team"))
    denied = openstack_cli(member, "volume", "type", "create", "mine", check=False)
    assert denied.returncode != 0 and "types_manage" in denied.stderr
    assert "pinned" in {t["Name"] for t in json.loads(
        openstack_cli(member, "volume", "type", "list", "-f", "json").stdout
    )}  # fmt: skip

    in_use = service.openstack("volume", "type", "delete", "pinned", check=False)
    assert in_use.returncode != 0 and "in use" in in_use.stderr
    kept = service.openstack("volume", "type", "delete", "__DEFAULT__", check=False)
    assert kept.returncode != 0 and "can not be deleted" in kept.stderr
    service.openstack("volume", "type", "delete", "bad")
    assert "bad" not in {t["Name"] for t in _json(service, "volume", "type", "list")}
