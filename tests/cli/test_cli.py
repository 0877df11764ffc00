"""The `bootvol` command as a user runs it: real processes, --json output, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from bootvol.bench.guest import libvirt_unavailable

from ..support import BOOTVOL, Estate


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*BOOTVOL, *args], capture_output=True, text=True, cwd=cwd, check=False)


def test_image_and_volume_lifecycle(estate: Estate) -> None:
    raw = estate.sample("disk.raw", size_mib=8)
    image = json.loads(
        estate.cli(
            "image", "create", "disk", "--file", str(raw), "--disk-format", "raw", "--json"
        ).stdout
    )
    assert image["status"] == "active" and image["size"] == raw.stat().st_size
    assert len(image["os_hash_value"]) == 128

    volume = json.loads(
        estate.cli(
            "volume",
            "create",
            "--image",
            "disk",
            "--size",
            "2",
            "--name",
            "v1",
            "--flexvol",
            "vol_a",
            "--json",
        ).stdout
    )
    assert {"id", "name", "status", "size_gib", "flexvol", "file", "provisioning"} <= set(volume)
    assert volume["status"] == "available" and volume["name"] == "v1"
    provisioning = volume["provisioning"]
    assert {"path", "skipped", "steps", "host_bytes"} <= set(provisioning)
    assert provisioning["path"] == "copy-offload"
    assert all({"name", "seconds"} <= set(step) for step in provisioning["steps"])

    human = estate.cli("volume", "show", "v1").stdout
    assert "copy-offload" in human and "not taken" in human
    listed = json.loads(estate.cli("volume", "list", "--json").stdout)
    assert [v["id"] for v in listed] == [volume["id"]]
    extended = json.loads(estate.cli("volume", "extend", "v1", "--size", "3", "--json").stdout)
    assert extended["size_gib"] == 3

    cache = json.loads(estate.cli("cache", "list", "--json").stdout)
    assert [(e["flexvol"], e["image_id"]) for e in cache] == [("vol_a", image["id"])]
    cleaned = json.loads(estate.cli("cache", "clean", "--json").stdout)
    assert all(not report["ran"] for report in cleaned)  # plenty of space: nothing to do

    flexvols = {f["name"]: f for f in json.loads(estate.cli("flexvol", "list", "--json").stdout)}
    assert flexvols["vol_b"]["filesystem"] == "btrfs" and flexvols["vol_b"]["reflink"]
    assert flexvols["vol_c"]["cluster"] == "cluster2"

    estate.cli("volume", "delete", "v1")
    estate.cli("image", "delete", "disk")
    assert json.loads(estate.cli("image", "list", "--json").stdout) == []
    assert not Path(volume["file"]).exists()


def test_errors_exit_with_their_code_and_message(estate: Estate, tmp_path: Path) -> None:
    missing = estate.cli("volume", "show", "nope", check=False)
    assert missing.returncode == 3
    assert "no volume with id or name 'nope'" in missing.stderr

    qcow2 = estate.sample_qcow2(estate.sample("d.raw", size_mib=2), "d.qcow2")
    refused = estate.cli(
        "image", "create", "x", "--file", str(qcow2), "--disk-format", "raw", check=False
    )
    assert refused.returncode == 4
    assert "content is qcow2" in refused.stderr

    bad = tmp_path / "bad.toml"
    bad.write_text('image_store = "images"\nclone_method = "fast"\n')
    config = run("--config", str(bad), "flexvol", "list")
    assert config.returncode == 2
    assert "line 2" in config.stderr and "clone_method" in config.stderr


def test_demo_on_the_embedded_default(tmp_path: Path) -> None:
    result = run("--data-dir", str(tmp_path / "data"), "demo", "--size-mib", "8", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    rows = report["volumes"]
    assert [r["path"] for r in rows] == [
        "download",
        "cache-clone",
        "copy-offload",
        "direct-clone",
        "copy-offload",
        "copy-offload",
    ]
    assert all(r["content_ok"] for r in rows)
    assert (tmp_path / "data" / "bootvol.toml").exists()
    # Then a server from a volume of the guest image, where libvirt runs (under CI it must).
    server = report["server"]
    if "skipped" in server:
        assert libvirt_unavailable() is not None, server
        assert os.environ.get("CI") != "true", server["skipped"]
        return
    assert "error" not in server, server["error"]
    assert server["line_ok"], server
    assert server["console_line"].startswith(f"bootvol-guest serial={server['volume_id'][:20]}")
    assert server["guest_line_s"] > server["request_to_active_s"] > 0
    # Nothing of it is left: no server, no domain, no host that would take new servers.
    data = ["--data-dir", str(tmp_path / "data")]
    assert json.loads(run(*data, "server", "list", "--json").stdout) == []
    assert json.loads(run(*data, "host", "list", "--json").stdout) == []
    assert json.loads(run(*data, "volume", "list", "--json").stdout) == []
    import libvirt

    connection = libvirt.open("qemu:///system")
    try:
        with pytest.raises(libvirt.libvirtError):
            connection.lookupByUUIDString(server["id"])
    finally:
        connection.close()


def test_help_describes_every_command() -> None:
    result = run("--help")
    assert result.returncode == 0
    for command in ("image", "volume", "cache", "flexvol", "demo"):
        assert command in result.stdout
