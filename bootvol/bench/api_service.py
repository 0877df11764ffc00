"""The benchmarks that go through the running service: its tokens, and ``bench --api``.

``project_tokens`` makes projects with a member each and logs them in over Keystone's API
(bench-load sends from ten of them). The service is ``bootvol serve`` in its own process
(bench.service_process). ``measure_api_latency`` times what a user of the Cinder
API waits for on an idle service: one ``POST /volumes`` of an image already in a FlexVol
(the image store's raw file: placement puts the volume where it clones), then
``GET /volumes/{id}`` every ``poll_ms`` until the volume is ``available``, one volume at a
time (each deleted before the next), so no request waits for another's work.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import httpx

from bootvol.bench.cluster import BenchCluster
from bootvol.bench.results import median, p95
from bootvol.bench.service_process import ServiceProcess
from bootvol.db.models import Role
from bootvol.errors import BenchmarkFailed
from bootvol.runtime import Bootvol

POLL_MS = 5.0  # a client polling this often sees the change within 5 ms of it
MEMBER_PASSWORD = "bench-member"


@dataclass(frozen=True)
class ProjectToken:
    project_id: str
    token: str


def project_tokens(base_url: str, app: Bootvol, count: int) -> list[ProjectToken]:
    """A token of a member of each of ``count`` new projects without quota limits."""
    tokens = []
    with httpx.Client(base_url=base_url, timeout=30) as client:
        for number in range(count):
            name = f"bench-{number}"
            project = app.identity.create_project(name, quota_volumes=-1, quota_gigabytes=-1)
            app.identity.create_user(
                f"{name}-user", password=MEMBER_PASSWORD, project=project.id, role=Role.MEMBER
            )
            response = client.post(
                "/identity/v3/auth/tokens", json=_password_auth(name, project.id)
            )
            response.raise_for_status()
            tokens.append(ProjectToken(project.id, response.headers["X-Subject-Token"]))
    return tokens


def _password_auth(name: str, project_id: str) -> dict[str, Any]:
    user = {"name": f"{name}-user", "domain": {"id": "default"}, "password": MEMBER_PASSWORD}
    return {
        "auth": {
            "identity": {"methods": ["password"], "password": {"user": user}},
            "scope": {"project": {"id": project_id}},
        }
    }


@dataclass(frozen=True)
class ApiLatency:
    """POST → ``available`` as a polling client saw it, per volume."""

    samples_ms: list[float]
    poll_ms: float
    workers: int
    paths: dict[str, int]  # provisioning path → volumes (clones: the image was cached)

    @property
    def median_ms(self) -> float:
        return median(self.samples_ms)

    @property
    def p95_ms(self) -> float:
        return p95(self.samples_ms)

    def to_json(self) -> dict[str, Any]:
        return {
            "post_to_available_ms": {
                "median": round(self.median_ms, 3),
                "p95": round(self.p95_ms, 3),
            },
            "volumes": len(self.samples_ms),
            "poll_interval_ms": self.poll_ms,
            "workers": self.workers,
            "paths": self.paths,
            "samples_ms": [round(ms, 3) for ms in self.samples_ms],
        }


def measure_api_latency(
    cluster: BenchCluster, *, image_id: str, size_gib: int, volumes: int, workers: int = 2
) -> ApiLatency:
    """Serve the cluster (``bootvol serve --workers``), make ``volumes`` volumes of the
    cached image ``image_id`` one after another over the API, stop the service."""
    app = cluster.app
    log = cluster.work_dir / "serve-api.log"
    with ServiceProcess(cluster.config, workers=workers, log=log) as service:
        (member,) = project_tokens(service.base_url, app, 1)
        headers = {"X-Auth-Token": member.token}
        base = f"/volume/v3/{member.project_id}/volumes"
        request = {"volume": {"size": size_gib, "imageRef": image_id}}
        samples, paths = [], Counter[str]()
        with httpx.Client(base_url=service.base_url, headers=headers, timeout=60) as client:
            for number in range(volumes + 1):  # the first opens the connection: not counted
                started = time.perf_counter()
                response = client.post(base, json=request)
                _expect(response, 202)
                volume_id = response.json()["volume"]["id"]
                _poll_until_available(client, f"{base}/{volume_id}")
                if number:
                    samples.append((time.perf_counter() - started) * 1000)
                    record = app.volumes.get(volume_id)
                    paths[str(record.provisioning.path if record.provisioning else "?")] += 1
                _expect(client.delete(f"{base}/{volume_id}"), 202)
    return ApiLatency(samples_ms=samples, poll_ms=POLL_MS, workers=workers, paths=dict(paths))


def _poll_until_available(client: httpx.Client, url: str, *, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        response = client.get(url)
        _expect(response, 200)
        status = response.json()["volume"]["status"]
        if status == "available":
            return
        if status not in ("creating", "downloading"):
            raise BenchmarkFailed(f"a volume over the API ended {status}: {response.text[:300]}")
        if time.monotonic() > deadline:
            raise BenchmarkFailed(f"a volume over the API was still {status} after {timeout_s:g} s")
        time.sleep(POLL_MS / 1000)


def _expect(response: httpx.Response, status: int) -> None:
    if response.status_code != status:
        raise BenchmarkFailed(
            f"{response.request.method} {response.request.url.path} answered "
            f"{response.status_code}, not {status}: {response.text[:300]}"
        )
