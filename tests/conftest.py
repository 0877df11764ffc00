"""Shared fixtures: real loopback filesystems as FlexVols, in two clusters.

Session-wide mounts (sparse backing files, so they cost what is written):

    xfs_a   XFS reflink=1   cluster1: images, vol_same (same filesystem as images)
    xfs_b   XFS reflink=1   cluster1: vol_a
    btrfs   btrfs           cluster1: vol_b
    xfs_c   XFS reflink=1   cluster2: vol_c

Each test gets its own sub-folders on them as FlexVols, and its own data folder, so tests
do not see each other's files. Tests that measure space make their own small filesystems.

Root and loop devices are needed. Without them the tests skip, except under CI=true where a
skip would hide a broken machine: there they fail.

The metadata store is SQLite unless a test asks for both: ``database_url`` is parametrized
indirectly with ``"sqlite"`` or ``"postgresql"`` (see ``BOTH_DATABASES``); PostgreSQL tests
share one throwaway server (tests/postgres.py) and get a fresh database each.
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from bootvol.bench.local_server import LocalFileServer
from bootvol.bench.loopback import FsKind, mounted_filesystem
from bootvol.runtime import open_bootvol

from .postgres import PostgresServer, postgres_server
from .support import Estate, require_libvirt, require_loopback, write_config

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    with postgres_server() as server:
        yield server


@pytest.fixture
def database_url(request: pytest.FixtureRequest) -> str | None:
    """None (the embedded SQLite) unless parametrized with "postgresql": a fresh database."""
    kind = getattr(request, "param", "sqlite")
    if kind == "sqlite":
        return None
    assert kind == "postgresql", kind
    server: PostgresServer = request.getfixturevalue("postgres")
    return server.new_database()


@pytest.fixture(scope="session")
def mounts() -> Iterator[dict[str, Path]]:
    require_loopback()
    base = Path(tempfile.mkdtemp(prefix="bootvol-test-"))
    layout = {"xfs_a": FsKind.XFS, "xfs_b": FsKind.XFS, "btrfs": FsKind.BTRFS, "xfs_c": FsKind.XFS}
    with ExitStack() as stack:
        mounted = {
            name: stack.enter_context(mounted_filesystem(kind, base / name, size_mib=2048))
            for name, kind in layout.items()
        }
        yield mounted
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def small_fs(tmp_path: Path) -> Callable[[FsKind, int], Path]:
    """Mount a dedicated filesystem for this test: small_fs(FsKind.EXT4, 64) → mount point."""
    require_loopback()
    numbers = itertools.count()
    with ExitStack() as stack:

        def make(kind: FsKind, size_mib: int) -> Path:
            point = tmp_path / f"fs-{kind}-{next(numbers)}"
            return stack.enter_context(mounted_filesystem(kind, point, size_mib=size_mib))

        yield make


@pytest.fixture
def make_estate(
    mounts: dict[str, Path],
    tmp_path: Path,
    request: pytest.FixtureRequest,
    database_url: str | None,
) -> Iterator[Callable[..., Estate]]:
    """Build an Estate; keyword arguments change the default topology or settings."""
    with ExitStack() as stack:

        def make(
            *,
            extra: str = "",
            vstorage: bool = True,
            version: str = "9.14.1",
            flexvols: dict[str, tuple[str, Path]] | None = None,
            exports: dict[str, str] | None = None,
        ) -> Estate:
            tag = f"{request.node.name[:40]}-{os.urandom(3).hex()}".replace("[", "-")
            tag = tag.replace("]", "")
            default = {
                "images": ("svm1", mounts["xfs_a"] / tag / "images"),
                "vol_same": ("svm1", mounts["xfs_a"] / tag / "vol_same"),
                "vol_a": ("svm1", mounts["xfs_b"] / tag / "vol_a"),
                "vol_b": ("svm1", mounts["btrfs"] / tag / "vol_b"),
                "vol_c": ("svm2", mounts["xfs_c"] / tag / "vol_c"),
            }
            chosen = flexvols or default
            if database_url is not None:
                extra = f'database_url = "{database_url}"\n{extra}'
            for _, folder in chosen.values():
                stack.callback(shutil.rmtree, folder.parent, True)
            data_dir = tmp_path / f"data-{tag}"
            config = write_config(
                tmp_path / f"bootvol-{tag}.toml",
                data_dir=data_dir,
                flexvols=chosen,
                svms={"svm1": ("cluster1", vstorage), "svm2": ("cluster2", True)},
                clusters={"cluster1": version, "cluster2": "9.14.1"},
                extra=extra,
                exports=exports,
            )
            workdir = tmp_path / f"served-{tag}"
            workdir.mkdir()
            server = stack.enter_context(LocalFileServer(workdir))
            return Estate(
                app=open_bootvol(config=config),
                config=config,
                flexvols={name: folder for name, (_, folder) in chosen.items()},
                workdir=workdir,
                server=server,
            )

        yield make


@pytest.fixture
def estate(make_estate: Callable[..., Estate]) -> Estate:
    return make_estate()


@pytest.fixture(scope="session")
def guest_image(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The guest image (raw) and the checksum its guest prints."""
    require_libvirt()
    path = tmp_path_factory.mktemp("guest") / "guest.raw"
    subprocess.run([str(ROOT / "scripts" / "guest-image"), str(path)], check=True)
    return path, path.with_name("guest.raw.sha256").read_text().strip()
