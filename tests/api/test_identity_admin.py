"""Keystone management with the real `openstack` command: an admin makes a project, a user
and a role assignment, the user then works in its project; members are refused; the
read-only routes tools call first answer."""

from __future__ import annotations

import json

import yaml

from ..support import openstack_cli
from .conftest import Service


def _json(service: Service, *args: str) -> object:
    return json.loads(service.openstack(*args, "-f", "json").stdout)


def test_admin_manages_projects_users_and_roles(service: Service) -> None:
    project = _json(service, "project", "create", "--description", "the lab", "lab")
    assert project["name"] == "lab" and project["description"] == "the lab"
    user = _json(service, "user", "create", "--project", "lab", "--password", "alice-pw-1", "alice")
    assert user["default_project_id"] == project["id"]
    service.openstack("role", "add", "--user", "alice", "--project", "lab", "member")
    rows = _json(
        service, "role", "assignment", "list", "--user", "alice", "--project", "lab", "--names"
    )
    assert [(r["Role"], r["User"], r["Project"]) for r in rows] == [
        ("member", "alice@Default", "lab@Default")
    ]
    assert {"admin", "member", "reader", "service"} <= {
        r["Name"] for r in _json(service, "role", "list")
    }
    assert "alice" in {u["Name"] for u in _json(service, "user", "list")}
    assert [d["Name"] for d in _json(service, "domain", "list")] == ["Default"]
    assert {"identity", "image", "volumev3"} <= {
        s["Type"] for s in _json(service, "service", "list")
    }
    assert _json(service, "endpoint", "list")

    # Alice signs in to her project, lists her own projects and makes a volume there.
    clouds = yaml.safe_load(service.clouds_yaml.read_text())
    clouds["clouds"]["bootvol"]["auth"].update(
        username="alice", password="alice-pw-1", project_name="lab"
    )
    alice = service.clouds_yaml.with_name("clouds-alice.yaml")
    alice.write_text(yaml.safe_dump(clouds))
    mine = json.loads(openstack_cli(alice, "project", "list", "--my-projects", "-f", "json").stdout)
    assert [p["Name"] for p in mine] == ["lab"]
    refused = openstack_cli(alice, "user", "create", "--password", "x", "mallory", check=False)
    assert refused.returncode != 0 and "403" in refused.stderr
    made = json.loads(
        openstack_cli(alice, "volume", "create", "--size", "1", "v", "-f", "json").stdout
    )
    service.wait_for(made["id"])
    assert service.estate.app.volumes.get(made["id"]).project_id == project["id"]

    # A project that still has volumes is kept; emptied, it goes, with its user.
    busy = service.openstack("project", "delete", "lab", check=False)
    assert busy.returncode != 0 and "still has volumes" in busy.stderr
    openstack_cli(alice, "volume", "delete", "v")
    service.openstack("role", "remove", "--user", "alice", "--project", "lab", "member")
    assert _json(service, "role", "assignment", "list", "--user", "alice") == []
    service.openstack("user", "delete", "alice")
    service.openstack("project", "delete", "lab")
    assert "lab" not in {p["Name"] for p in _json(service, "project", "list")}
    kept = service.openstack("user", "delete", "admin", check=False)
    assert kept.returncode != 0 and "cannot be deleted" in kept.stderr
