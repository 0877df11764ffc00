"""Helpers shared by the tests: the CI-aware skip, the Estate a test drives, configs."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from bootvol.bench.guest import libvirt_unavailable
from bootvol.bench.guest import reachable_by_qemu as reachable_by_qemu  # the tests' import
from bootvol.bench.local_server import LocalFileServer
from bootvol.bench.loopback import loopback_unavailable
from bootvol.bench.samples import make_qcow2, make_raw, register_remote
from bootvol.runtime import Bootvol
from bootvol.units import MiB

# Module-level `pytestmark = BOTH_DATABASES` runs a module's tests on SQLite and PostgreSQL.
BOTH_DATABASES = pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
BOOTVOL = [sys.executable, "-m", "bootvol"]
OPENSTACK = str(Path(sys.executable).with_name("openstack"))


def require(what: str, reason: str | None) -> None:
    """Skip the test when ``reason`` says why ``what`` is unavailable; under CI=true, where
    a skip would hide a broken machine, fail instead."""
    if reason is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what} required under CI: {reason}")
    pytest.skip(f"{what} unavailable: {reason}")


def require_loopback() -> None:
    """Root, loop devices and the storage tools."""
    missing = [tool for tool in ("qemu-img", "strace", "prlimit") if shutil.which(tool) is None]
    reason = loopback_unavailable() or (f"{', '.join(missing)} not installed" if missing else None)
    require("loopback filesystems and storage tools", reason)


def require_libvirt() -> None:
    """libvirtd and QEMU (and root, loop devices)."""
    require_loopback()
    require("libvirt and QEMU", libvirt_unavailable())


@dataclass
class Estate:
    """A bootvol instance on test FlexVols, and what a test needs to drive it."""

    app: Bootvol
    config: Path
    flexvols: dict[str, Path]
    workdir: Path
    server: LocalFileServer
    cleanups: list[Callable[[], None]] = field(default_factory=list)

    def command(self, *args: str) -> list[str]:
        """The ``bootvol`` command line on this estate's config."""
        return [*BOOTVOL, "--config", str(self.config), *args]

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            self.command(*args),
            capture_output=True,
            text=True,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"bootvol {' '.join(args)} failed:\n{result.stderr}")
        return result

    def sample(self, name: str, *, size_mib: int = 16, seed: int = 1) -> Path:
        """A sparse raw sample disk in the served folder (http://…/name)."""
        return make_raw(self.workdir / name, size_bytes=size_mib * MiB, seed=seed)

    def sample_qcow2(self, raw: Path, name: str) -> Path:
        return make_qcow2(raw, self.workdir / name)

    def url(self, name: str) -> str:
        return self.server.url_for(name)

    def remote_image(
        self, *, size_mib: int = 16, url_for: Callable[[str], str] | None = None
    ) -> tuple[str, Path]:
        """A qcow2 image registered by URL (this estate's file server, or ``url_for``'s),
        with its size and md5 to verify; returns (image id, the raw disk it holds)."""
        raw = self.sample("disk.raw", size_mib=size_mib)
        qcow2 = self.sample_qcow2(raw, "disk.qcow2")
        url = (url_for or self.url)("disk.qcow2")
        image_id = register_remote(
            self.app.images, qcow2, url=url, disk_format="qcow2", name="remote"
        )
        return image_id, raw


def write_config(
    path: Path,
    *,
    data_dir: Path,
    flexvols: dict[str, tuple[str, Path]],
    svms: dict[str, tuple[str, bool]],
    clusters: dict[str, str],
    extra: str = "",
    exports: dict[str, str] | None = None,
) -> Path:
    """flexvols: name → (svm, path); svms: name → (cluster, vstorage); clusters: name → version;
    exports: name → the FlexVol's NFS export ("server:/path")."""
    lines = [f'data_dir = "{data_dir}"', 'image_store = "images"', extra, ""]
    for name, version in clusters.items():
        lines += ["[[cluster]]", f'name = "{name}"', f'version = "{version}"', ""]
    for name, (cluster, vstorage) in svms.items():
        lines += [
            "[[svm]]",
            f'name = "{name}"',
            f'cluster = "{cluster}"',
            f"vstorage = {'true' if vstorage else 'false'}",
            "",
        ]
    for name, (svm, folder) in flexvols.items():
        lines += ["[[flexvol]]", f'name = "{name}"', f'svm = "{svm}"', f'path = "{folder}"']
        if exports and name in exports:
            lines.append(f'export = "{exports[name]}"')
        lines.append("")
    path.write_text("\n".join(lines))
    return path


def openstack_cli(clouds: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """The real ``openstack`` command (from .venv) on cloud ``bootvol`` of ``clouds``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    env["OS_CLIENT_CONFIG_FILE"] = str(clouds)
    result = subprocess.run(
        [OPENSTACK, "--os-cloud", "bootvol", *args],
        capture_output=True,
        text=True,
        env=env,
        stdin=subprocess.DEVNULL,
        check=False,
        timeout=120,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"openstack {' '.join(args)} failed:\n{result.stderr}")
    return result
