"""Glance's interoperable image import, end to end: the real `openstack` command and
openstacksdk stage and import (glance-direct) or name a URL on a loopback HTTP server
(web-download); the refusals answer Glance's status codes; a failed import leaves the image
queued, saying why, with no staged or stored file."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from threading import Thread
from typing import Any

import httpx
import pytest

from bootvol.db.models import ImageRecord, ImageStatus
from bootvol.images.imports import IMPORT_ERROR_PROPERTY

from ..support import openstack_cli
from .conftest import Service

OCTETS = {"Content-Type": "application/octet-stream"}


@pytest.fixture
def service(make_service: Callable[..., Service]) -> Service:
    """The test file server listens on a random loopback port: let web-download reach it
    (test_web_download_filters has the default, ports 80 and 443 only)."""
    return make_service(extra="[web_download]\nallowed_ports = []")


def wait_for_import(service: Service, image_id: str, *, timeout: float = 60) -> ImageRecord:
    """Poll the image's record until its import has ended (active, or back to queued)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        record = service.estate.app.images.get(image_id)
        if record.status != ImageStatus.IMPORTING:
            return record
        time.sleep(0.05)
    raise AssertionError(f"image {image_id} still importing after {timeout} s")


def image_store_files(service: Service) -> list[Path]:
    """Image files, staged files and scratch folders left in the image store."""
    folder = service.estate.app.images.store.flexvol.path
    return [
        *(p for p in folder.glob("image-*")),
        *(folder / "staging").glob("*"),
        *(folder / ".bootvol" / "tmp").glob("*"),
    ]


def saved(service: Service, image_id: str) -> bytes:
    path = service.estate.workdir / f"saved-{image_id}"
    service.openstack("image", "save", "--file", str(path), image_id)
    return path.read_bytes()


def qcow2_with_backing_file(service: Service) -> Path:
    base = service.estate.sample("base.raw", size_mib=1)
    child = service.estate.workdir / "child.qcow2"
    subprocess.run(
        ["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(base), "-F", "raw", str(child)],
        check=True,
    )
    return child


class Glance:
    """Raw HTTP on the image API with one token, for status codes and bodies."""

    def __init__(self, service: Service, token: str) -> None:
        self.service = service
        self.headers = {"X-Auth-Token": token}

    def create(self, **body: Any) -> dict[str, Any]:
        with self.service.http() as http:
            created = http.post(
                "/image/v2/images",
                json={"name": "i", "container_format": "bare", **body},
                headers=self.headers,
            )
        assert created.status_code == 201, created.text
        return created.json()

    def stage(self, image_id: str, data: bytes, **headers: str) -> httpx.Response:
        with self.service.http() as http:
            return http.put(
                f"/image/v2/images/{image_id}/stage",
                content=data,
                headers={**self.headers, **OCTETS, **headers},
            )

    def start(self, image_id: str, method: dict[str, Any]) -> httpx.Response:
        with self.service.http() as http:
            return http.post(
                f"/image/v2/images/{image_id}/import",
                json={"method": method},
                headers=self.headers,
            )

    def show(self, image_id: str) -> dict[str, Any]:
        with self.service.http() as http:
            return http.get(f"/image/v2/images/{image_id}", headers=self.headers).json()


def test_import_methods_and_stores_discovery(service: Service) -> None:
    token, _ = service.token()
    with service.http() as http:
        info = http.get("/image/v2/info/import", headers={"X-Auth-Token": token})
        stores = http.get("/image/v2/info/stores", headers={"X-Auth-Token": token})
        created = http.post(
            "/image/v2/images",
            json={"name": "h", "disk_format": "raw", "container_format": "bare"},
            headers={"X-Auth-Token": token},
        )
    assert info.status_code == 200
    assert info.json() == {
        "import-methods": {
            "description": "Import methods available.",
            "type": "array",
            "value": ["glance-direct", "web-download"],
        }
    }
    # Glance without multiple stores: 404, which openstacksdk and the CLI expect there.
    assert stores.status_code == 404
    assert "Multi backend is not supported" in stores.text
    assert created.headers["OpenStack-image-import-methods"] == "glance-direct,web-download"


def test_glance_direct_with_the_openstack_cli(service: Service) -> None:
    raw = service.estate.sample("direct.raw", size_mib=3)
    created = json.loads(
        service.openstack(
            "image", "create", "--import", "--file", str(raw), "--disk-format", "raw",
            "direct", "-f", "json",
        ).stdout
    )  # fmt: skip
    assert created["status"] in ("importing", "active")
    record = wait_for_import(service, created["id"])
    assert record.status == ImageStatus.ACTIVE, record.message
    assert record.size == raw.stat().st_size and record.checksum and record.os_hash_value
    assert saved(service, record.id) == raw.read_bytes()
    assert not list((service.estate.app.images.store.flexvol.path / "staging").iterdir())

    # The two steps by hand: `image stage`, then `image import` (glance-direct by default).
    # The image is made over HTTP: the CLI's `image create` would upload its empty stdin.
    Glance(service, service.token()[0]).create(name="staged", disk_format="raw")
    service.openstack("image", "stage", "--file", str(raw), "staged")
    shown = json.loads(service.openstack("image", "show", "staged", "-f", "json").stdout)
    assert shown["status"] == "uploading"
    service.openstack("image", "import", "staged")
    assert wait_for_import(service, shown["id"]).status == ImageStatus.ACTIVE
    assert saved(service, shown["id"]) == raw.read_bytes()


def test_web_download_with_the_openstack_cli_and_openstacksdk(service: Service) -> None:
    estate = service.estate
    qcow2 = estate.sample_qcow2(estate.sample("web.raw", size_mib=3), "web.qcow2")
    # The CLI's `image create` has no --uri: create (over HTTP, as the CLI's would upload its
    # empty stdin), then `image import` by URL.
    created = Glance(service, service.token()[0]).create(name="web", disk_format="qcow2")
    service.openstack(
        "image", "import", "--method", "web-download", "--uri", estate.url("web.qcow2"), "web"
    )  # fmt: skip
    record = wait_for_import(service, created["id"])
    assert record.status == ImageStatus.ACTIVE, record.message
    assert record.disk_format == "qcow2" and record.virtual_size == 3 * 1024 * 1024
    assert saved(service, record.id) == qcow2.read_bytes()

    conn = service.connect()
    by_url = conn.image.create_image(
        "sdk-web",
        disk_format="qcow2",
        use_import=True,
        import_method="web-download",
        uri=estate.url("web.qcow2"),
    )
    staged = conn.image.create_image(
        "sdk-direct", filename=str(qcow2), disk_format="qcow2", use_import=True
    )
    for image in (by_url, staged):
        assert wait_for_import(service, image.id).status == ImageStatus.ACTIVE
        assert b"".join(conn.image.download_image(image, stream=True)) == qcow2.read_bytes()


def test_import_refusals_answer_glance_status_codes(service: Service) -> None:
    raw = service.estate.sample("r.raw", size_mib=1).read_bytes()
    token, _ = service.token()
    glance = Glance(service, token)
    queued = glance.create(disk_format="raw")["id"]

    unknown = glance.start(queued, {"name": "copy-image"})
    assert unknown.status_code == 400 and "Unknown import method name 'copy-image'" in unknown.text
    unstaged = glance.start(queued, {"name": "glance-direct"})
    assert unstaged.status_code == 409 and "needs to be staged" in unstaged.text
    not_http = glance.start(queued, {"name": "web-download", "uri": "file:///etc/passwd"})
    assert not_http.status_code == 400 and "does not pass filtering" in not_http.text
    no_uri = glance.start(queued, {"name": "web-download"})
    assert no_uri.status_code == 400
    wrong_type = glance.stage(queued, raw, **{"Content-Type": "text/plain"})
    assert wrong_type.status_code == 415
    assert glance.show(queued)["status"] == "queued"

    assert glance.stage(queued, raw).status_code == 204
    assert glance.show(queued)["status"] == "uploading"
    again = glance.stage(queued, raw)
    assert again.status_code == 409 and "transition from uploading" in again.text
    by_url = glance.start(queued, {"name": "web-download", "uri": "http://127.0.0.1:9/x"})
    assert by_url.status_code == 409 and "'queued' state" in by_url.text
    assert glance.start(queued, {"name": "glance-direct"}).status_code == 202
    assert wait_for_import(service, queued).status == ImageStatus.ACTIVE
    active = glance.start(queued, {"name": "glance-direct"})
    assert active.status_code == 409 and "status active" in active.text

    no_format = glance.create()["id"]  # disk_format unset: staging is allowed, importing not
    assert glance.stage(no_format, raw).status_code == 204
    refused = glance.start(no_format, {"name": "glance-direct"})
    assert refused.status_code == 409 and "'disk_format' needs to be set" in refused.text

    # Another project's member: a private image is invisible (404), a public one read-only.
    service.add_member("team")
    member = Glance(service, service.token("team-user", "pw-team", "team")[0])
    public = glance.create(disk_format="raw", visibility="public")["id"]
    private = glance.create(disk_format="raw", visibility="private")["id"]
    assert member.stage(private, raw).status_code == 404
    assert member.start(private, {"name": "web-download", "uri": "http://x/y"}).status_code == 404
    assert member.stage(public, raw).status_code == 403
    assert member.start(public, {"name": "glance-direct"}).status_code == 403
    assert glance.show(public)["status"] == "queued"


def test_a_failed_web_download_leaves_the_image_queued_with_the_reason(service: Service) -> None:
    estate = service.estate
    qcow2 = estate.sample_qcow2(estate.sample("late.raw", size_mib=1), "late.qcow2")
    token, _ = service.token()
    glance = Glance(service, token)
    image_id = glance.create(disk_format="qcow2")["id"]
    missing = glance.start(image_id, {"name": "web-download", "uri": estate.url("missing.qcow2")})
    assert missing.status_code == 202
    record = wait_for_import(service, image_id)
    assert record.status == ImageStatus.QUEUED
    assert record.message and "404" in record.message and "missing.qcow2" in record.message
    shown = glance.show(image_id)
    assert shown["status"] == "queued" and "404" in shown[IMPORT_ERROR_PROPERTY]
    cli = json.loads(service.openstack("image", "show", image_id, "-f", "json").stdout)
    assert "404" in cli["properties"][IMPORT_ERROR_PROPERTY]
    assert image_store_files(service) == []

    # Queued again, so the import can be retried; success clears the reason.
    retried = glance.start(image_id, {"name": "web-download", "uri": estate.url("late.qcow2")})
    assert retried.status_code == 202
    assert wait_for_import(service, image_id).status == ImageStatus.ACTIVE
    assert IMPORT_ERROR_PROPERTY not in glance.show(image_id)
    assert saved(service, image_id) == qcow2.read_bytes()


def test_unsafe_content_is_refused_as_an_upload_is(service: Service) -> None:
    child = qcow2_with_backing_file(service)
    token, _ = service.token()
    glance = Glance(service, token)
    for disk_format, reason in (("qcow2", "backing file"), ("raw", "content is qcow2")):
        staged = glance.create(disk_format=disk_format)["id"]
        assert glance.stage(staged, child.read_bytes()).status_code == 204
        assert glance.start(staged, {"name": "glance-direct"}).status_code == 202
        record = wait_for_import(service, staged)
        assert record.status == ImageStatus.QUEUED and reason in (record.message or "")
        assert image_store_files(service) == []

    by_url = glance.create(disk_format="qcow2")["id"]
    url = service.estate.url(child.name)
    assert glance.start(by_url, {"name": "web-download", "uri": url}).status_code == 202
    record = wait_for_import(service, by_url)
    assert record.status == ImageStatus.QUEUED and "backing file" in (record.message or "")
    assert image_store_files(service) == []

    # The CLI's create --import reports nothing wrong (the import is asynchronous), and
    # the image it leaves says why it holds no bytes.
    cli = json.loads(
        openstack_cli(
            service.clouds_yaml, "image", "create", "--import", "--file", str(child),
            "--disk-format", "qcow2", "unsafe", "-f", "json",
        ).stdout
    )  # fmt: skip
    record = wait_for_import(service, cli["id"])
    assert record.status == ImageStatus.QUEUED and "backing file" in (record.message or "")
    assert image_store_files(service) == []


@pytest.fixture
def redirect_to() -> Iterator[Callable[[str], str]]:
    """A loopback server whose every GET answers 302 to one URL: redirect_to(url) → its URL."""
    target: list[str] = []

    class Redirect(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(302)
            self.send_header("Location", target[0])
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    thread = Thread(target=server.serve_forever, daemon=True)
    thread.start()

    def point(url: str) -> str:
        target[:] = [url]
        return f"http://127.0.0.1:{server.server_address[1]}/image.qcow2"

    yield point
    server.shutdown()
    server.server_close()
    thread.join()


def test_web_download_filters(
    make_service: Callable[..., Service], redirect_to: Callable[[str], str]
) -> None:
    """Glance's import filtering: by default ports 80 and 443 only; hosts by list; a redirect
    is checked as the URL it leads to is, so it cannot reach what the URL could not."""
    default = make_service()
    glance = Glance(default, default.token()[0])
    image_id = glance.create(disk_format="qcow2")["id"]
    file_url = default.estate.url("web.qcow2")  # a random port
    refused = glance.start(image_id, {"name": "web-download", "uri": file_url})
    assert refused.status_code == 400, refused.text
    assert "is not in [web_download] allowed_ports" in refused.text
    assert glance.show(image_id)["status"] == "queued"

    filtered = make_service(
        extra='[web_download]\nallowed_ports = []\ndisallowed_hosts = ["localhost"]'
    )
    estate = filtered.estate
    qcow2 = estate.sample_qcow2(estate.sample("web.raw", size_mib=1), "web.qcow2")
    glance = Glance(filtered, filtered.token()[0])
    image_id = glance.create(disk_format="qcow2")["id"]
    to_localhost = estate.url("web.qcow2").replace("127.0.0.1", "localhost")
    refused = glance.start(image_id, {"name": "web-download", "uri": to_localhost})
    assert refused.status_code == 400 and "disallowed_hosts" in refused.text
    # Allowed itself, but it redirects to a disallowed host: the import fails at that hop.
    redirected = glance.start(image_id, {"name": "web-download", "uri": redirect_to(to_localhost)})
    assert redirected.status_code == 202, redirected.text
    record = wait_for_import(filtered, image_id)
    assert record.status == ImageStatus.QUEUED
    assert record.message and "disallowed_hosts" in record.message
    assert image_store_files(filtered) == []
    # The same file by an address the filters let through is imported.
    allowed = glance.start(image_id, {"name": "web-download", "uri": estate.url("web.qcow2")})
    assert allowed.status_code == 202
    assert wait_for_import(filtered, image_id).status == ImageStatus.ACTIVE
    assert saved(filtered, image_id) == qcow2.read_bytes()
