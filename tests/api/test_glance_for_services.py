"""What a real Cinder asks bootvol's Glance: version discovery as glanceclient does it, and
image locations (Glance v2.17, for the service role only)."""

from __future__ import annotations

from .conftest import Service


def test_versions_as_glanceclient_asks_them(service: Service) -> None:
    with service.http() as http:
        explicit = http.get("/image/versions")
        root = http.get("/image/")
    assert explicit.status_code == 200 and root.status_code == 300
    assert explicit.json() == root.json()
    versions = {entry["id"]: entry for entry in explicit.json()["versions"]}
    # glanceclient's has_version(client, "v2.17"): that id, in one of these statuses.
    assert versions["v2.17"]["status"] == "CURRENT"
    assert {v["status"] for k, v in versions.items() if k != "v2.17"} == {"SUPPORTED"}
    assert "v2.0" in versions
    for entry in versions.values():
        assert entry["links"] == [{"rel": "self", "href": f"{service.base_url}/image/v2/"}]
