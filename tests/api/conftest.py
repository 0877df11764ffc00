"""A real bootvol service on a free loopback port, over an Estate's loopback FlexVols.

``service`` starts the API, the volume workers and the cleaner in this process (uvicorn in
a background thread) and hands out what a test drives it with: httpx, openstacksdk
connections, and the ``openstack`` command in a subprocess.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openstack
import pytest
import yaml

from bootvol.db.models import Role
from bootvol.server import Server
from bootvol.volumes.claims import IN_PROGRESS

from ..support import Estate, openstack_cli


@dataclass
class Service:
    estate: Estate
    server: Server
    clouds_yaml: Path
    admin_password: str

    @property
    def base_url(self) -> str:
        return self.server.base_url

    @property
    def auth_url(self) -> str:
        return self.server.auth_url

    def http(self) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, timeout=30)

    def token(
        self, user: str = "admin", password: str | None = None, project: str = "admin"
    ) -> Any:
        """(token, token body) for ``user`` scoped to ``project``, by names."""
        body = {
            "auth": {
                "identity": {
                    "methods": ["password"],
                    "password": {
                        "user": {
                            "name": user,
                            "domain": {"name": "Default"},
                            "password": password or self.admin_password,
                        }
                    },
                },
                "scope": {"project": {"name": project, "domain": {"id": "default"}}},
            }
        }
        with self.http() as client:
            response = client.post("/identity/v3/auth/tokens", json=body)
        assert response.status_code == 201, response.text
        return response.headers["X-Subject-Token"], response.json()["token"]

    def connect(
        self, user: str = "admin", password: str | None = None, project: str = "admin"
    ) -> openstack.connection.Connection:
        return openstack.connect(
            auth_url=self.auth_url,
            username=user,
            password=password or self.admin_password,
            project_name=project,
            user_domain_name="Default",
            project_domain_name="Default",
            region_name="RegionOne",
            identity_api_version="3",
            load_yaml_config=False,
            load_envvars=False,
        )

    def add_member(self, project: str, *, volumes: int = -1, gigabytes: int = -1) -> str:
        """A project with a member user named after it; returns the user's password."""
        identity = self.estate.app.identity
        identity.create_project(project, quota_volumes=volumes, quota_gigabytes=gigabytes)
        password = f"pw-{project}"
        identity.create_user(
            f"{project}-user", password=password, project=project, role=Role.MEMBER
        )
        return password

    def member_cloud(self, project: str, password: str) -> Path:
        """A clouds.yaml whose cloud ``bootvol`` is ``project``'s member (see add_member)."""
        clouds = yaml.safe_load(self.clouds_yaml.read_text())
        clouds["clouds"]["bootvol"]["auth"].update(
            username=f"{project}-user", password=password, project_name=project
        )
        path = self.clouds_yaml.with_name(f"clouds-{project}.yaml")
        path.write_text(yaml.safe_dump(clouds))
        return path

    def openstack(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """The real ``openstack`` command against this service (cloud ``bootvol``)."""
        return openstack_cli(self.clouds_yaml, *args, check=check)

    def wait_for(self, volume_id: str, *, timeout: float = 60) -> Any:
        """Poll the volume's record until it leaves creating/downloading."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            record = self.estate.app.volumes.get(volume_id)
            if record.status not in IN_PROGRESS:
                return record
            time.sleep(0.05)
        raise AssertionError(f"volume {volume_id} still {record.status} after {timeout} s")


@pytest.fixture
def make_service(make_estate: Callable[..., Estate]) -> Iterator[Callable[..., Service]]:
    started: list[Server] = []

    def make(**estate_options: Any) -> Service:
        estate = make_estate(**estate_options)
        server = Server(estate.app, host="127.0.0.1", port=0, workers=2)
        server.start()
        started.append(server)
        prepared = server.prepare()
        assert prepared.entry is not None and prepared.created_admin
        return Service(
            estate=estate,
            server=server,
            clouds_yaml=prepared.clouds_yaml,
            admin_password=prepared.entry["auth"]["password"],
        )

    yield make
    for server in started:
        server.stop()


@pytest.fixture
def service(make_service: Callable[..., Service]) -> Service:
    return make_service()
