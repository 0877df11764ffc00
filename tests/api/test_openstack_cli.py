"""The `openstack` command against `bootvol serve`, as a newcomer runs them.

`bootvol serve` runs as its own process on the embedded default (SQLite and FlexVols as
folders of a fresh data folder): its first start makes the admin user and a clouds.yaml
(0600); the unmodified `openstack` command then uploads an image and makes, grows and
deletes a volume from it.
"""

from __future__ import annotations

import json
import signal
import socket
import stat
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import yaml

from bootvol.bench.content import file_sha256, volume_sha256
from bootvol.bench.samples import make_qcow2, make_raw
from bootvol.runtime import open_bootvol
from bootvol.units import MiB

from ..support import BOOTVOL, openstack_cli


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def serving(data_dir: Path, *, log: Path | None = None) -> Iterator[tuple[int, str]]:
    """`bootvol serve` in a subprocess; yields its port and what it printed (its log, a
    file as in a journal, goes to ``log``)."""
    port = _free_port()
    log = log or data_dir.parent / "serve.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as sink:
        process = subprocess.Popen(
            [*BOOTVOL, "--data-dir", str(data_dir), "serve", "--port", str(port)],
            stdout=subprocess.PIPE,
            stderr=sink,
            stdin=subprocess.DEVNULL,
            text=True,
        )
    assert process.stdout is not None
    try:
        printed = []
        for line in process.stdout:
            printed.append(line)
            if line.startswith("# serving"):
                break
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/identity/v3", timeout=1)
                break
            except httpx.TransportError:
                assert process.poll() is None, log.read_text()
                assert time.monotonic() < deadline, "bootvol serve did not start"
                time.sleep(0.1)
        yield port, "".join(printed)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()


def test_openstack_command_against_bootvol_serve(tmp_path: Path) -> None:
    data = tmp_path / "data"
    raw = make_raw(tmp_path / "disk.raw", size_bytes=16 * MiB)
    qcow2 = make_qcow2(raw, tmp_path / "disk.qcow2")
    with serving(data) as (port, printed):
        clouds = data / "clouds.yaml"
        assert stat.S_IMODE(clouds.stat().st_mode) == 0o600
        entry = yaml.safe_load(clouds.read_text())["clouds"]["bootvol"]
        assert entry["auth"]["auth_url"] == f"http://127.0.0.1:{port}/identity/v3"
        assert entry["auth"]["username"] == "admin" and entry["auth"]["project_name"] == "admin"
        assert entry["identity_api_version"] == 3 and entry["volume_api_version"] == 3
        # The entry is printed without its password: that lives in clouds.yaml (0600) only.
        password = entry["auth"]["password"]
        shown = yaml.safe_load(
            "\n".join(line for line in printed.splitlines() if not line.startswith("#"))
        )["clouds"]["bootvol"]
        assert "password" not in shown["auth"]
        assert shown == {
            **entry,
            "auth": {k: v for k, v in entry["auth"].items() if k != "password"},
        }
        assert password not in printed

        image = json.loads(
            openstack_cli(
                clouds, "image", "create", "--disk-format", "qcow2", "--file", str(qcow2),
                "cirros", "-f", "json",
            ).stdout
        )  # fmt: skip
        assert image["status"] == "active" and image["name"] == "cirros"
        created = json.loads(
            openstack_cli(
                clouds, "volume", "create", "--image", "cirros", "--size", "1", "v1", "-f", "json"
            ).stdout
        )
        assert created["status"] in ("creating", "downloading", "available")
        app = open_bootvol(data_dir=data)
        deadline = time.monotonic() + 60
        while app.volumes.get(created["id"]).status != "available":
            assert app.volumes.get(created["id"]).status != "error"
            assert time.monotonic() < deadline
            time.sleep(0.1)
        shown = json.loads(openstack_cli(clouds, "volume", "show", "v1", "-f", "json").stdout)
        assert shown["status"] == "available" and shown["bootable"] in (True, "true")
        assert shown["properties"]["bootvol:path"] == "copy-offload"
        record = app.volumes.get(created["id"])
        assert volume_sha256(
            Path(record.file), file_format=record.file_format, length=raw.stat().st_size
        ) == file_sha256(raw)

        openstack_cli(clouds, "volume", "set", "--size", "2", "v1")
        listed = json.loads(openstack_cli(clouds, "volume", "list", "-f", "json").stdout)
        assert [(v["Name"], v["Size"], v["Status"]) for v in listed] == [("v1", 2, "available")]
        missing = openstack_cli(
            clouds, "volume", "create", "--image", "nope", "--size", "1", "v2", check=False
        )
        assert missing.returncode != 0 and "nope" in missing.stderr
        openstack_cli(clouds, "volume", "delete", "v1")
        openstack_cli(clouds, "image", "delete", "cirros")
        assert app.volumes.list() == [] and app.images.list() == []
        assert not Path(record.file).exists()

    # Its log went to a file: plain lines, one per request with the id the client got.
    log = (tmp_path / "serve.log").read_text()
    assert password not in log
    access = [line for line in log.splitlines() if "bootvol.access" in line]
    assert any(" POST /volume/v3/" in line and " 202 " in line for line in access), log
    assert all(line.split()[4].startswith("req-") and line.endswith(" ms") for line in access)

    # A second start keeps the admin's password and points clouds.yaml at the new port.
    with serving(data, log=tmp_path / "serve-again.log") as (port, _):
        again = yaml.safe_load(clouds.read_text())["clouds"]["bootvol"]
        assert again["auth"]["password"] == password
        assert again["auth"]["auth_url"] == f"http://127.0.0.1:{port}/identity/v3"
        # A third on the same port fails alone, with its own exit status and a clear message.
        taken = subprocess.run(
            [*BOOTVOL, "--data-dir", str(data), "serve", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert taken.returncode == 14, taken.stderr
        assert f"127.0.0.1:{port} is already in use" in taken.stderr
        assert password not in taken.stdout + taken.stderr
