"""Driving a running Cinder stack as its users: Cinder's API over HTTP, and the real
``openstack`` command (.venv's python-openstackclient) on the stack's clouds.yaml.

Tokens come from bootvol's Keystone and are asked again once when Cinder answers 401.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

REPO = Path(__file__).resolve().parents[2]
VOLUME_API_VERSION = "volume 3.0"
ERROR_STATUSES = frozenset({"error", "error_deleting", "error_extending", "error_restoring"})


class StackError(RuntimeError):
    """The stack failed to start or a volume failed; the message ends with the logs' tails."""


@dataclass(frozen=True)
class StackUser:
    name: str
    password: str
    project: str
    project_id: str


class CinderClient:
    def __init__(
        self,
        *,
        cinder_url: str,
        keystone_url: str,  # …/identity/v3
        users: Mapping[str, StackUser],  # by cloud name: "admin", "member", …
        clouds_yaml: Path,
        report: Callable[[], str],  # the logs' tails, for error messages
    ) -> None:
        self.cinder_url = cinder_url
        self.keystone_url = keystone_url
        self.users = users
        self.clouds_yaml = clouds_yaml
        self._report = report
        self._tokens: dict[str, str] = {}

    def openstack(
        self, *args: str, cloud: str = "admin", check: bool = True, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        """The real ``openstack`` command (.venv's) as ``cloud``; StackError if it fails."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
        env["OS_CLIENT_CONFIG_FILE"] = str(self.clouds_yaml)
        result = subprocess.run(
            [openstack_command(), "--os-cloud", cloud, *args],
            capture_output=True,
            text=True,
            env=env,
            stdin=subprocess.DEVNULL,
            check=False,
            timeout=timeout,
        )
        if check and result.returncode != 0:
            raise StackError(
                f"openstack {' '.join(args)} failed ({result.returncode}):\n{result.stderr}"
            )
        return result

    def openstack_json(self, *args: str, cloud: str = "admin") -> Any:
        """``openstack … -f json``, parsed."""
        return yaml.safe_load(self.openstack(*args, "-f", "json", cloud=cloud).stdout)

    def cinder(self, method: str, path: str, *, cloud: str = "admin", **kwargs: Any) -> Any:
        """One call to the Cinder API as ``cloud``'s user, ``path`` under /v3/<project id>;
        returns the parsed body (None when empty); StackError on an error status."""
        response = self.request(method, path, cloud=cloud, **kwargs)
        if response.status_code >= 400:
            raise StackError(f"{method} {path}: {response.status_code} {response.text}")
        return response.json() if response.content else None

    def wait_for_volume(
        self,
        volume_id: str,
        statuses: Sequence[str] = ("available",),
        *,
        cloud: str = "admin",
        timeout: float = 600.0,
    ) -> dict[str, Any]:
        """Poll the volume until its status is one of ``statuses`` and return it.

        ``"deleted"`` means gone (404). An error status not asked for fails at once, with the
        logs' tails; so does a deadline generous enough for a slow download on 2 cores.
        """
        deadline = time.monotonic() + timeout
        while True:
            response = self.request("GET", f"/volumes/{volume_id}", cloud=cloud)
            if response.status_code == 404 and "deleted" in statuses:
                return {"id": volume_id, "status": "deleted"}
            if response.status_code >= 400:
                raise StackError(f"volume {volume_id}: {response.status_code} {response.text}")
            volume: dict[str, Any] = response.json()["volume"]
            if volume["status"] in statuses:
                return volume
            if volume["status"] in ERROR_STATUSES:
                raise StackError(
                    f"volume {volume_id} is {volume['status']}, not {'/'.join(statuses)}: "
                    f"{volume}\n{self._report()}"
                )
            if time.monotonic() > deadline:
                raise StackError(
                    f"volume {volume_id} still {volume['status']} after {timeout:.0f} s\n"
                    f"{self._report()}"
                )
            threading.Event().wait(0.1)

    def request(
        self,
        method: str,
        path: str,
        *,
        cloud: str = "admin",
        timeout: float = 120,
        **kwargs: Any,
    ) -> httpx.Response:
        """The raw response to one Cinder API call (``path`` under /v3/<project id>)."""
        user = self.users[cloud]
        url = f"{self.cinder_url}/v3/{user.project_id}{path}"
        headers = {"OpenStack-API-Version": VOLUME_API_VERSION}
        with httpx.Client(timeout=timeout) as client:
            for attempt in (1, 2):
                headers["X-Auth-Token"] = self._token(cloud, fresh=attempt == 2)
                response = client.request(method, url, headers=headers, **kwargs)
                if response.status_code != 401:
                    break
        return response

    def _token(self, cloud: str, *, fresh: bool = False) -> str:
        if fresh or cloud not in self._tokens:
            user = self.users[cloud]
            password = {
                "user": {"name": user.name, "domain": {"id": "default"}, "password": user.password}
            }
            body = {
                "auth": {
                    "identity": {"methods": ["password"], "password": password},
                    "scope": {"project": {"id": user.project_id}},
                }
            }
            response = httpx.post(f"{self.keystone_url}/auth/tokens", json=body, timeout=30)
            response.raise_for_status()
            self._tokens[cloud] = response.headers["X-Subject-Token"]
        return self._tokens[cloud]


def openstack_command() -> str:
    """The ``openstack`` beside this interpreter (.venv/bin), else the repository's .venv's."""
    beside = Path(sys.executable).with_name("openstack")
    return str(beside if beside.exists() else REPO / ".venv" / "bin" / "openstack")
