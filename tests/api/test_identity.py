"""Keystone v3 subset: discovery, tokens and their catalog, 401s; the project/user CLI."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable

from .conftest import Service


def test_version_discovery_documents(service: Service) -> None:
    with service.http() as http:
        root = http.get("/identity/")
        v3 = http.get("/identity/v3")
    assert root.status_code == 300
    [entry] = root.json()["versions"]["values"]
    assert entry["id"].startswith("v3.") and entry["status"] == "stable"
    assert entry["links"] == [{"rel": "self", "href": f"{service.base_url}/identity/v3/"}]
    assert v3.status_code == 200 and v3.json()["version"]["id"] == entry["id"]
    assert v3.json()["version"]["media-types"][0]["base"] == "application/json"


def test_password_token_with_catalog(service: Service) -> None:
    token, body = service.token()
    assert len(token) >= 32
    expires = dt.datetime.strptime(body["expires_at"], "%Y-%m-%dT%H:%M:%S.%fZ")
    assert dt.timedelta(minutes=50) < expires - dt.datetime.utcnow() < dt.timedelta(hours=2)
    assert body["methods"] == ["password"]
    assert body["user"]["name"] == "admin" and body["user"]["domain"]["id"] == "default"
    assert body["project"]["name"] == "admin"
    assert {"admin", "member", "reader"} <= {role["name"] for role in body["roles"]}
    services = {entry["type"]: entry for entry in body["catalog"]}
    assert set(services) == {"identity", "image", "block-storage", "volumev3", "compute"}
    project = body["project"]["id"]
    expected = {
        "identity": f"{service.base_url}/identity",
        "image": f"{service.base_url}/image",
        "block-storage": f"{service.base_url}/volume/v3/{project}",
        "volumev3": f"{service.base_url}/volume/v3/{project}",
        "compute": f"{service.base_url}/compute/v2.1",
    }
    for kind, url in expected.items():
        endpoints = services[kind]["endpoints"]
        assert {e["interface"] for e in endpoints} == {"public", "internal"}
        assert all(e["url"] == url and e["region_id"] == "RegionOne" for e in endpoints)
        assert {"id", "interface", "region", "region_id", "url"} == set(endpoints[0])


def test_ids_work_as_well_as_names_and_tokens_validate_and_revoke(service: Service) -> None:
    token, body = service.token()
    with service.http() as http:
        by_ids = http.post(
            "/identity/v3/auth/tokens",
            json={
                "auth": {
                    "identity": {
                        "methods": ["password"],
                        "password": {
                            "user": {"id": body["user"]["id"], "password": service.admin_password}
                        },
                    },
                    "scope": {"project": {"id": body["project"]["id"]}},
                }
            },
        )
        assert by_ids.status_code == 201
        other = by_ids.headers["X-Subject-Token"]
        shown = http.get(
            "/identity/v3/auth/tokens", headers={"X-Auth-Token": token, "X-Subject-Token": other}
        )
        assert shown.status_code == 200
        assert shown.json()["token"]["project"]["id"] == body["project"]["id"]
        revoked = http.delete(
            "/identity/v3/auth/tokens", headers={"X-Auth-Token": token, "X-Subject-Token": other}
        )
        assert revoked.status_code == 204
        after = http.get("/image/v2/images", headers={"X-Auth-Token": other})
        assert after.status_code == 401


def test_bad_credentials_and_tokens_get_401(service: Service) -> None:
    _, body = service.token()
    project = body["project"]["id"]
    with service.http() as http:
        wrong = http.post(
            "/identity/v3/auth/tokens",
            json={
                "auth": {
                    "identity": {
                        "methods": ["password"],
                        "password": {
                            "user": {"name": "admin", "domain": {"id": "default"}, "password": "x"}
                        },
                    }
                }
            },
        )
        assert wrong.status_code == 401
        assert wrong.json()["error"]["code"] == 401
        assert "X-Subject-Token" not in wrong.headers
        for path in ("/image/v2/images", f"/volume/v3/{project}/volumes"):
            missing = http.get(path)
            assert missing.status_code == 401, path
            assert missing.headers["WWW-Authenticate"].startswith("Keystone")
            forged = http.get(path, headers={"X-Auth-Token": "not-a-token"})
            assert forged.status_code == 401, path
        malformed = http.post(
            "/identity/v3/auth/tokens",
            content=b"{not json",
            headers={"Content-Type": "application/json"},
        )
        assert malformed.status_code == 400
        assert malformed.json()["error"]["code"] == 400


def test_project_and_user_commands(service: Service) -> None:
    cli = service.estate.cli
    project = json.loads(
        cli("project", "create", "team", "--volumes", "3", "--gigabytes", "30", "--json").stdout
    )
    assert project["quota_volumes"] == 3 and project["quota_gigabytes"] == 30
    changed = json.loads(
        cli("project", "set-quota", "team", "--cores", "8", "--ram", "4096", "--json").stdout
    )
    assert (changed["quota_cores"], changed["quota_ram_mib"]) == (8, 4096)
    assert (changed["quota_volumes"], changed["quota_instances"]) == (3, 10)  # kept; default
    user = json.loads(
        cli("user", "create", "alice", "--project", "team", "--password", "s3cret", "--json").stdout
    )
    assert user["default_project_id"] == project["id"] and user["role"] == "member"
    duplicate = cli("user", "create", "alice", "--project", "team", "--password", "x", check=False)
    assert duplicate.returncode == 5 and "already exists" in duplicate.stderr
    _, body = service.token("alice", "s3cret", "team")
    assert {role["name"] for role in body["roles"]} == {"member", "reader"}
    stored = service.estate.app.identity.get_user("alice").password_hash
    assert stored.startswith("$argon2id$") and "s3cret" not in stored


def test_service_users_and_admins_validate_others_tokens_members_do_not(service: Service) -> None:
    """keystonemiddleware in a real Cinder validates its users' tokens with its own, which
    holds the service role (Keystone's default identity:validate_token)."""
    cli = service.estate.cli
    cli("project", "create", "service")
    created = cli(
        "user", "create", "cinder", "--project", "service", "--role", "service",
        "--password", "cinder-pw", "--json",
    )  # fmt: skip
    assert json.loads(created.stdout)["role"] == "service"
    cinder, cinder_body = service.token("cinder", "cinder-pw", "service")
    assert [role["name"] for role in cinder_body["roles"]] == ["service"]
    member_password = service.add_member("team")
    member, _ = service.token("team-user", member_password, "team")
    admin, _ = service.token()
    user, user_body = service.token("team-user", member_password, "team")

    def validate(token: str, subject: str) -> int:
        with service.http() as http:
            headers = {"X-Auth-Token": token, "X-Subject-Token": subject}
            response = http.get("/identity/v3/auth/tokens", headers=headers)
        if response.status_code == 200:
            assert response.json()["token"]["user"]["id"] == user_body["user"]["id"]
        return response.status_code

    assert validate(cinder, user) == 200
    assert validate(admin, user) == 200
    assert validate(member, user) == 200  # the same user: the token's own subject
    other_password = service.add_member("others")
    other, _ = service.token("others-user", other_password, "others")
    assert validate(other, user) == 403
    with service.http() as http:
        denied = http.get(
            "/identity/v3/auth/tokens", headers={"X-Auth-Token": other, "X-Subject-Token": cinder}
        )
    assert denied.status_code == 403 and denied.json()["error"]["code"] == 403
    with service.http() as http:
        # identity:revoke_token is admins' and the token's own user's, not services'.
        revoked = http.delete(
            "/identity/v3/auth/tokens", headers={"X-Auth-Token": cinder, "X-Subject-Token": user}
        )
        assert revoked.status_code == 403
        assert http.get("/image/v2/images", headers={"X-Auth-Token": user}).status_code == 200


def test_catalog_names_an_external_block_storage(make_service: Callable[..., Service]) -> None:
    """[catalog] block_storage: a real Cinder using bootvol's engine serves the volumes."""
    template = "http://127.0.0.1:18776/v3/{project_id}"
    service = make_service(extra=f'[catalog]\nblock_storage = "{template}"')
    token, body = service.token()
    project = body["project"]["id"]
    with service.http() as http:
        listed = http.get("/identity/v3/auth/catalog", headers={"X-Auth-Token": token})
    assert listed.status_code == 200
    for catalog in (body["catalog"], listed.json()["catalog"]):
        urls = {
            entry["type"]: {endpoint["url"] for endpoint in entry["endpoints"]} for entry in catalog
        }
        assert urls["block-storage"] == urls["volumev3"] == {f"http://127.0.0.1:18776/v3/{project}"}
        assert urls["image"] == {f"{service.base_url}/image"}
