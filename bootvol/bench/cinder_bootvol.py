"""bootvol's side of the Cinder stack: its Keystone and Glance, served from this process.

bootvol runs on the image store FlexVol only (Cinder owns the volume FlexVols), with
``[catalog] block_storage`` so that tokens' ``block-storage``/``volumev3`` entries name the
real Cinder. It has three users:

    admin   project admin    (made by the first start, as ``bootvol serve`` does)
    cinder  project service  roles admin and service: Cinder's [keystone_authtoken] and
                             [glance] user (validates tokens; Glance's image locations)
    demo    project demo     role member: a tenant

and writes clouds.yaml with clouds ``admin`` and ``member`` (mode 0600). bootvol's log
records (its own and uvicorn's requests) also go to ``<folder>/bootvol.log``.
"""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import yaml

from bootvol.bench.cinder_client import StackUser
from bootvol.bench.cinder_conf import StorageLayout
from bootvol.db.models import Role
from bootvol.identity import clouds
from bootvol.runtime import Bootvol, open_bootvol
from bootvol.server import Server

SERVICE_USER, SERVICE_PROJECT = "cinder", "service"
MEMBER_USER, MEMBER_PROJECT = "demo", "demo"


@dataclass(frozen=True)
class BootvolService:
    bootvol: Bootvol
    server: Server
    users: dict[str, StackUser]  # "admin", "member", "service"
    clouds_yaml: Path
    log: Path

    @property
    def keystone_url(self) -> str:
        return f"{self.server.base_url}/identity/v3"


@contextmanager
def bootvol_service(
    folder: Path,
    *,
    storage: StorageLayout,
    image_store: str,
    port: int,
    cinder_url: str,
    service_password: str,
    clouds_yaml: Path,
) -> Iterator[BootvolService]:
    """Serve bootvol on 127.0.0.1:``port`` until the block ends."""
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "bootvol.toml"
    config.write_text(_bootvol_toml(folder, storage, image_store, cinder_url))
    log_file = folder / "bootvol.log"
    with _logging_to(log_file):
        app = open_bootvol(config=config)
        server = Server(app, host="127.0.0.1", port=port, workers=1)
        server.start()
        try:
            users = _make_users(server, service_password)
            _write_clouds_yaml(clouds_yaml, f"{server.base_url}/identity/v3", users)
            yield BootvolService(app, server, users, clouds_yaml, log_file)
        finally:
            server.stop()


def _make_users(server: Server, service_password: str) -> dict[str, StackUser]:
    prepared = server.prepare()
    assert prepared.entry is not None, "a fresh data folder has no admin yet"
    identity = server.bootvol.identity
    users = {
        "admin": StackUser(
            "admin",
            prepared.entry["auth"]["password"],
            "admin",
            identity.get_project("admin").id,
        )
    }
    for key, name, project, roles, password in (
        # As devstack makes Cinder's user: admin and service in project service.
        ("service", SERVICE_USER, SERVICE_PROJECT, (Role.SERVICE, Role.ADMIN), service_password),
        ("member", MEMBER_USER, MEMBER_PROJECT, (Role.MEMBER,), secrets.token_urlsafe(18)),
    ):
        project_id = identity.create_project(project).id
        identity.create_user(name, password=password, project=project, role=roles[0])
        for role in roles[1:]:
            identity.grant(user=name, project=project, role=role)
        users[key] = StackUser(name, password, project, project_id)
    return users


def _bootvol_toml(folder: Path, storage: StorageLayout, image_store: str, cinder_url: str) -> str:
    store = storage.flexvol(image_store)
    svm = next(s for s in storage.svms if s.name == store.svm)
    cluster = next(c for c in storage.clusters if c.name == svm.cluster)
    lines = [f'data_dir = "{folder}"', f'image_store = "{store.name}"']
    lines += ["[catalog]", f'block_storage = "{cinder_url}/v3/{{project_id}}"']
    lines += [
        "[[cluster]]",
        f'name = "{cluster.name}"',
        f'version = "{cluster.version}"',
        "[[svm]]",
        f'name = "{svm.name}"',
        f'cluster = "{cluster.name}"',
        f"vstorage = {'true' if svm.vstorage else 'false'}",
        "[[flexvol]]",
        f'name = "{store.name}"',
        f'svm = "{svm.name}"',
        f'path = "{store.path}"',
        "volumes = true",  # bootvol wants one; its own volume API goes unused here
    ]
    if store.export is not None:
        lines.append(f'export = "{store.export}"')
    return "\n".join(lines) + "\n"


def _write_clouds_yaml(path: Path, auth_url: str, users: dict[str, StackUser]) -> None:
    entries = {}
    for cloud in ("admin", "member"):
        user = users[cloud]
        entry = clouds.cloud_entry(
            auth_url=auth_url, username=user.name, password=user.password, project=user.project
        )
        entries[cloud] = entry
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        yaml.safe_dump({"clouds": entries}, out, sort_keys=False)


@contextmanager
def _logging_to(path: Path) -> Iterator[None]:
    """bootvol's and uvicorn's log records (INFO and up) also go to ``path``."""
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    loggers = [logging.getLogger(name) for name in ("bootvol", "uvicorn")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        if logger.getEffectiveLevel() > logging.INFO:
            logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.removeHandler(handler)
            logger.setLevel(level)
        handler.close()
