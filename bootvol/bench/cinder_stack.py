"""The real OpenStack Cinder running bootvol's engine, brought up and down whole.

``with CinderStack(work, storage=…, backends=…) as stack:`` starts, in this order (what can
overlap does: RabbitMQ boots while bootvol starts and Cinder's database is made):

    rabbit/     a private RabbitMQ (bench/rabbitmq.py): its own node, ports and epmd
    bootvol/    bootvol's service in this process (bootvol.server.Server on a free port):
                Keystone and Glance, with the image store on the layout's image FlexVol and
                ``[catalog] block_storage`` pointing the token catalog at the real Cinder;
                users ``admin``, ``cinder`` (project ``service``) and ``demo`` (project ``demo``)
    cinder/     cinder.conf (bench/cinder_conf.py), ``cinder-manage db sync``, then
                cinder-api, cinder-scheduler and cinder-volume from the Cinder venv, each in
                a session of its own, logs in cinder/logs
    clouds.yaml clouds ``admin`` and ``member`` for the ``openstack`` command

and returns once the stack is ready by conditions, never by sleeping: the API answers,
the os-services API shows the scheduler and every backend's cinder-volume ``up``, and the
scheduler's pool list has every backend (before that, a new volume would fail with "No valid
backend"). Then it creates one volume type per backend (``volume_backend_name``).

Leaving the block stops everything it started, whatever happened: the Cinder services by
process group (and their descendants that left it), bootvol's server, RabbitMQ and its epmd;
then it checks that no process still names the work folder. Mounts belong to the caller
(:func:`throwaway_flexvols` makes XFS reflink FlexVols on loop devices).
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import yaml

from bootvol.bench.cinder_conf import (
    BOOTVOL_DRIVER,
    CinderBackend,
    CinderConf,
    ServiceUser,
    StorageLayout,
    bootvol_backend,
)
from bootvol.bench.loopback import FsKind, loopback_unavailable, mounted_filesystem
from bootvol.bench.postgres import PostgresServer, postgres_unavailable, throwaway_postgres
from bootvol.bench.processes import (
    Child,
    kill_pids,
    processes_naming,
    start_child,
    stop_children,
)
from bootvol.bench.rabbitmq import PrivateRabbitMQ, free_port, rabbitmq_unavailable
from bootvol.config import ClusterSettings, FlexVolSettings, Settings, SvmSettings
from bootvol.db.models import Role
from bootvol.identity import clouds
from bootvol.runtime import Bootvol, open_bootvol
from bootvol.server import Server

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[2]
CINDER_VENV = REPO / ".cinder-venv"
CINDER_SERVICES = ("cinder-api", "cinder-scheduler", "cinder-volume")
CINDER_HOST = "stack"  # services register as "stack", backends as "stack@<backend>"
SERVICE_USER, SERVICE_PROJECT = "cinder", "service"
VOLUME_API_VERSION = "volume 3.0"
READINESS_CALL_SECONDS = 1.0  # the first wait for a readiness call (get_pools: ~30 ms)
ERROR_STATUSES = frozenset({"error", "error_deleting", "error_extending", "error_restoring"})

# The layout the tests and the demo use: an image store and one pool FlexVol per backend.
IMAGE_STORE = "images"
BACKEND_POOLS = {"bv_a": "vol_a", "bv_b": "vol_b"}


class StackError(RuntimeError):
    """The stack failed to start or a volume failed; the message ends with the logs' tails."""


def cinder_unavailable(venv: Path = CINDER_VENV) -> str | None:
    """Why the real Cinder stack cannot run here, or None when it can."""
    if not (venv / "bin" / "cinder-volume").exists():
        return f"no Cinder in {venv} (./scripts/setup builds it)"
    return rabbitmq_unavailable() or postgres_unavailable()


@dataclass(frozen=True)
class StackUser:
    name: str
    password: str
    project: str
    project_id: str


class CinderStack:
    def __init__(
        self,
        work: Path,
        *,
        storage: StorageLayout,
        backends: Sequence[CinderBackend],
        image_store: str = IMAGE_STORE,
        cinder_venv: Path = CINDER_VENV,
        debug: bool = False,
        ready_timeout: float = 180.0,
    ) -> None:
        self.work = work.resolve()
        self.storage = storage
        self.backends = tuple(backends)
        self.image_store = image_store
        self.cinder_venv = cinder_venv
        self.debug = debug
        self.ready_timeout = ready_timeout
        self.rabbit = PrivateRabbitMQ(self.work / "rabbit")
        self.cinder_port = free_port()
        self.cinder_url = f"http://127.0.0.1:{self.cinder_port}"
        self.bootvol_port = free_port()
        self.bootvol_url = f"http://127.0.0.1:{self.bootvol_port}"
        self._service_password = secrets.token_urlsafe(18)
        self.clouds_yaml = self.work / "clouds.yaml"
        self.conf: CinderConf | None = None
        self.postgres: PostgresServer | None = None
        self.bootvol: Bootvol | None = None
        self.server: Server | None = None
        self.users: dict[str, StackUser] = {}  # "admin", "member", "service"
        self.timings: dict[str, float] = {}  # phase → seconds, for the report
        self._children: list[Child] = []
        self._exit = ExitStack()
        self._tokens: dict[str, str] = {}
        self._readiness_timeout = READINESS_CALL_SECONDS

    # bring-up ------------------------------------------------------------------------------
    def __enter__(self) -> CinderStack:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def start(self) -> None:
        reason = cinder_unavailable(self.cinder_venv)
        if reason is not None:
            raise StackError(reason)
        started = time.monotonic()
        self.work.mkdir(parents=True, exist_ok=True)
        self._exit.callback(self._check_nothing_left)  # registered first: runs last
        self._exit.callback(self._timed_call, "stop rabbitmq", self.rabbit.stop)
        # RabbitMQ boots (seconds of Erlang) while Cinder's database is made and bootvol
        # starts: cinder.conf needs only their addresses and the service user's password.
        self.rabbit.start()
        with self._timed("postgresql"):
            self.postgres = self._exit.enter_context(throwaway_postgres())
            database_url = self.postgres.new_database("cinder")
        self.conf = CinderConf(
            folder=self.work / "cinder",
            venv=self.cinder_venv,
            host=CINDER_HOST,
            transport_url=self.rabbit.transport_url,
            api_port=self.cinder_port,
            keystone=ServiceUser(
                auth_url=f"{self.bootvol_url}/identity/v3",
                username=SERVICE_USER,
                password=self._service_password,
                project=SERVICE_PROJECT,
            ),
            glance_url=f"{self.bootvol_url}/image",
            database_url=database_url,
            backends=self.backends,
            debug=self.debug,
        )
        self.conf.write()
        db_sync = self._start_cinder_manage("db", "sync")
        self._exit.callback(stop_children, [db_sync])  # a no-op once it exited
        with self._timed("bootvol"):
            self._start_bootvol()
        with self._timed("cinder-manage db sync"):
            self._wait_exited(db_sync)
        self._exit.callback(self._timed_call, "stop cinder", self._stop_cinder)
        # The scheduler learns the backends' pools from the stats each cinder-volume publishes
        # at start (before it listens) and that the scheduler asks for at its own start;
        # both are lost when the other side does not listen yet, and then the pools appear
        # only with the next periodic report, up to a minute later ("No valid backend" for
        # every volume meanwhile). So the scheduler starts once every backend listens.
        self._start_service("cinder-api")
        self._start_service("cinder-volume")
        with self._timed("rabbitmq"):
            self.rabbit.wait_ready()
        with self._timed("cinder-volume listening"):
            self._wait_until(self._backends_not_listening)
        self._start_service("cinder-scheduler")
        with self._timed("cinder ready"):
            self._wait_until(self._not_ready)
        with self._timed("volume types"):
            for backend in self.backends:
                self._create_volume_type(backend.name)
        self.timings["up"] = time.monotonic() - started
        log.info("Cinder stack ready in %.1f s: %s", self.timings["up"], self.timings)

    def close(self) -> None:
        """Stop everything that was started (safe to call twice, and after a failed start)."""
        started = time.monotonic()
        try:
            self._exit.close()
        finally:
            self.timings["down"] = time.monotonic() - started

    # what drivers of the stack use ---------------------------------------------------------
    @property
    def cinder_version(self) -> str:
        sites = [str(p) for p in self.cinder_venv.glob("lib/python*/site-packages")]
        found = importlib.metadata.Distribution.discover(name="cinder", path=sites)
        return next(iter(found)).version

    @property
    def log_paths(self) -> list[Path]:
        """Every log the stack writes, in the order worth reading after a failure."""
        paths = []
        if self.conf is not None:
            for name in (*CINDER_SERVICES, "cinder-manage"):
                paths += [self.conf.log_dir / f"{name}.log", self.conf.log_dir / f"{name}.out"]
            paths.append(self.conf.log_dir / "privsep-helper.log")
        paths += [self.work / "bootvol" / "bootvol.log", *self.rabbit.logs]
        if self.postgres is not None:
            paths.append(self.postgres.log)
        return [path for path in paths if path.exists()]

    def failure_report(self, *, lines: int = 40) -> str:
        """The last ``lines`` of every log, to print when something failed."""
        report = []
        for path in self.log_paths:
            tail = path.read_text(errors="replace").splitlines()[-lines:]
            report += [f"==> {path} <==", *tail]
        return "\n".join(report)

    def openstack(
        self, *args: str, cloud: str = "admin", check: bool = True, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        """The real ``openstack`` command (.venv's) on this stack's clouds.yaml."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
        env["OS_CLIENT_CONFIG_FILE"] = str(self.clouds_yaml)
        result = subprocess.run(
            [_openstack_command(), "--os-cloud", cloud, *args],
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
        returns the parsed body (None when empty); raises StackError on an error status."""
        response = self._cinder_request(method, path, cloud=cloud, **kwargs)
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
            response = self._cinder_request("GET", f"/volumes/{volume_id}", cloud=cloud)
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
                    f"{volume}\n{self.failure_report()}"
                )
            if time.monotonic() > deadline:
                raise StackError(
                    f"volume {volume_id} still {volume['status']} after {timeout:.0f} s\n"
                    f"{self.failure_report()}"
                )
            threading.Event().wait(0.1)

    # bootvol -------------------------------------------------------------------------------
    def _start_bootvol(self) -> None:
        folder = self.work / "bootvol"
        folder.mkdir(parents=True, exist_ok=True)
        config = folder / "bootvol.toml"
        config.write_text(self._bootvol_toml(folder))
        self._exit.enter_context(_logging_to(folder / "bootvol.log"))
        self.bootvol = open_bootvol(config=config)
        self.server = Server(self.bootvol, host="127.0.0.1", port=self.bootvol_port, workers=1)
        self.server.start()
        self._exit.callback(self._timed_call, "stop bootvol", self.server.stop)
        prepared = self.server.prepare()
        assert prepared.entry is not None, "a fresh data folder has no admin yet"
        identity = self.bootvol.identity
        admin_project = identity.get_project("admin")
        self.users["admin"] = StackUser(
            "admin", prepared.entry["auth"]["password"], "admin", admin_project.id
        )
        for key, name, project, roles, password in (
            # Cinder's service user: admin to validate tokens, the service role for Glance's
            # image-locations API (its default policy asks for the service role).
            ("service", SERVICE_USER, SERVICE_PROJECT, _service_roles(), self._service_password),
            ("member", "demo", "demo", (Role.MEMBER,), secrets.token_urlsafe(18)),
        ):
            project_id = identity.create_project(project).id
            identity.create_user(name, password=password, project=project, role=roles[0])
            for role in roles[1:]:
                identity.grant(user=name, project=project, role=role)
            self.users[key] = StackUser(name, password, project, project_id)
        self._write_clouds_yaml()

    def _bootvol_toml(self, folder: Path) -> str:
        """bootvol's own config: only the image store; Cinder owns the volume FlexVols."""
        store = self.storage.flexvol(self.image_store)
        svm = next(s for s in self.storage.svms if s.name == store.svm)
        cluster = next(c for c in self.storage.clusters if c.name == svm.cluster)
        lines = [
            f'data_dir = "{folder}"',
            f'image_store = "{store.name}"',
        ]
        if "catalog" in Settings.model_fields:
            # Tokens' catalog: block-storage and volumev3 are the real Cinder, not bootvol's.
            lines += ["[catalog]", f'block_storage = "{self.cinder_url}/v3/{{project_id}}"']
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

    def _write_clouds_yaml(self) -> None:
        entries = {}
        for cloud in ("admin", "member"):
            user = self.users[cloud]
            entry = clouds.cloud_entry(
                auth_url=f"{self.bootvol_url}/identity/v3",
                username=user.name,
                password=user.password,
                project=user.project,
            )
            if "catalog" not in Settings.model_fields:
                # Until bootvol's catalog can name another Cinder, clients are told directly.
                entry["block_storage_endpoint_override"] = f"{self.cinder_url}/v3/%(project_id)s"
            entries[cloud] = entry
        fd = os.open(self.clouds_yaml, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            yaml.safe_dump({"clouds": entries}, out, sort_keys=False)

    # Cinder --------------------------------------------------------------------------------
    def _cinder_environment(self) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("OS_") and k not in ("PYTHONPATH", "VIRTUAL_ENV")
        }
        env["PATH"] = f"{self.cinder_venv / 'bin'}:{env.get('PATH', '/usr/bin:/bin')}"
        python_path = [str(p) for backend in self.backends for p in backend.python_path]
        if python_path:
            env["PYTHONPATH"] = os.pathsep.join(python_path)
        return env

    def _start_cinder_manage(self, *args: str) -> Child:
        assert self.conf is not None
        command = self.cinder_venv / "bin" / "cinder-manage"
        return start_child(
            f"cinder-manage {' '.join(args)}",
            [str(command), "--config-file", str(self.conf.path), *args],
            output=self.conf.log_dir / "cinder-manage.out",
            env=self._cinder_environment(),
            cwd=self.conf.folder,
        )

    def _wait_exited(self, child: Child, *, timeout: float = 300) -> None:
        try:
            status = child.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise StackError(f"{child.name} still running after {timeout:.0f} s") from None
        if status != 0:
            raise StackError(f"{child.name} failed ({status})\n{self.failure_report()}")

    def _stop_cinder(self) -> None:
        killed = stop_children(self._children, grace_seconds=10)
        if killed:
            log.warning("Cinder services that ignored SIGTERM were killed: %s", killed)
        self._children = []

    def _start_service(self, name: str) -> None:
        assert self.conf is not None
        self._children.append(
            start_child(
                name,
                [str(self.cinder_venv / "bin" / name), "--config-file", str(self.conf.path)],
                output=self.conf.log_dir / f"{name}.out",
                env=self._cinder_environment(),
                cwd=self.conf.folder,
            )
        )

    def _wait_until(self, not_ready: Callable[[], str | None]) -> None:
        """Poll ``not_ready`` (what is still awaited, or None) until None; fail at once when a
        service exits or a backend fails, and at the deadline."""
        deadline = time.monotonic() + self.ready_timeout
        while True:
            for child in self._children:
                if not child.alive():
                    raise StackError(
                        f"{child.name} exited with status {child.process.returncode} while "
                        f"starting\n{self.failure_report()}"
                    )
            self._refuse_failed_backend()
            waiting_for = not_ready()
            if waiting_for is None:
                return
            if time.monotonic() > deadline:
                raise StackError(
                    f"Cinder not ready after {self.ready_timeout:.0f} s: still waiting for "
                    f"{waiting_for}\n{self.failure_report()}"
                )
            threading.Event().wait(0.1)

    def _backends_not_listening(self) -> str | None:
        """cinder-volume logs this once per backend right after its RPC servers started
        (VolumeManager.init_host_with_rpc, Cinder 29)."""
        assert self.conf is not None
        log_file = self.conf.log_dir / "cinder-volume.log"
        text = log_file.read_text(errors="replace") if log_file.exists() else ""
        listening = text.count("Initializing RPC dependent components of volume driver")
        if listening < len(self.backends):
            return f"cinder-volume to listen ({listening} of {len(self.backends)} backends)"
        return None

    def _not_ready(self) -> str | None:
        """What the stack still waits for, or None when it is ready. A server error or a
        refused connection is "not yet"; a client error (a refused token, say) is fatal."""
        try:
            with httpx.Client(timeout=10) as client:
                client.get(f"{self.cinder_url}/")
            return self._services_not_up() or self._pools_not_known()
        except httpx.TransportError:
            return "cinder-api to answer"

    def _services_not_up(self) -> str | None:
        body = self._get_while_starting("/os-services")
        if body is None:
            return "cinder-api to answer /os-services"
        up = {(s["binary"], s["host"]) for s in body["services"] if s["state"] == "up"}
        expected = [("cinder-scheduler", CINDER_HOST)]
        expected += [("cinder-volume", f"{CINDER_HOST}@{b.name}") for b in self.backends]
        missing = [f"{binary} on {host}" for binary, host in expected if (binary, host) not in up]
        return f"services up: {', '.join(missing)}" if missing else None

    def _pools_not_known(self) -> str | None:
        body = self._get_while_starting("/scheduler-stats/get_pools")
        if body is None:
            return "cinder-api to answer /scheduler-stats/get_pools"
        known = {pool["name"].split("#", 1)[0] for pool in body["pools"]}
        missing = [b.name for b in self.backends if f"{CINDER_HOST}@{b.name}" not in known]
        return f"the scheduler to know the pools of {', '.join(missing)}" if missing else None

    def _get_while_starting(self, path: str) -> Any:
        """GET ``path``; None for "not yet": a server error, or no answer within seconds.

        get_pools is an RPC call to the scheduler, which is "up" (its database record) a
        moment before it listens; a call sent in that moment is lost, and cinder-api answers
        500 only at ``rpc_response_timeout`` (60 s). So we do not wait for that answer but
        ask again, waiting twice as long each time (a loaded machine is slow, not lost)."""
        try:
            response = self._cinder_request("GET", path, timeout=self._readiness_timeout)
        except httpx.TimeoutException:
            self._readiness_timeout = min(2 * self._readiness_timeout, 60)
            return None
        if response.status_code >= 500:
            return None
        if response.status_code >= 400:
            raise StackError(
                f"GET {path}: {response.status_code} {response.text}\n{self.failure_report()}"
            )
        return response.json()

    def _refuse_failed_backend(self) -> None:
        """A backend that failed to start leaves cinder-volume running but never up: say so
        now rather than at the deadline. cinder-volume logs "Volume service <host> failed to
        start." when the service could not even be created (cinder/cmd/volume.py) and
        "Failed to initialize driver." when the driver's setup raised (volume/manager.py)."""
        assert self.conf is not None
        log_file = self.conf.log_dir / "cinder-volume.log"
        if not log_file.exists():
            return
        lines = log_file.read_text(errors="replace").splitlines()
        for index, line in enumerate(lines):
            if "Failed to initialize driver" in line or "failed to start" in line:
                raise StackError(
                    f"a Cinder volume backend failed to start: {_logged_error(lines, index)}\n"
                    f"{self.failure_report()}"
                )

    def _create_volume_type(self, name: str) -> None:
        body = {"volume_type": {"name": name, "extra_specs": {"volume_backend_name": name}}}
        self.cinder("POST", "/types", json=body)

    def _cinder_request(
        self,
        method: str,
        path: str,
        *,
        cloud: str = "admin",
        timeout: float = 120,
        **kwargs: Any,
    ) -> httpx.Response:
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
            body = {
                "auth": {
                    "identity": {
                        "methods": ["password"],
                        "password": {
                            "user": {
                                "name": user.name,
                                "domain": {"id": "default"},
                                "password": user.password,
                            }
                        },
                    },
                    "scope": {"project": {"id": user.project_id}},
                }
            }
            response = httpx.post(
                f"{self.bootvol_url}/identity/v3/auth/tokens", json=body, timeout=30
            )
            response.raise_for_status()
            self._tokens[cloud] = response.headers["X-Subject-Token"]
        return self._tokens[cloud]

    # teardown checks -----------------------------------------------------------------------
    def _check_nothing_left(self) -> None:
        """Everything the stack starts names one of its folders on its command line (config
        files, RabbitMQ's paths, PostgreSQL's data folder); anything still running that does
        is a leak: kill it."""
        folders = [self.work] + ([self.postgres.base] if self.postgres is not None else [])
        for folder in folders:
            left = processes_naming(folder)
            if left:
                log.warning("processes left in %s after teardown, killed: %s", folder, left)
                kill_pids(left)

    def _timed_call(self, phase: str, call: Callable[[], object]) -> None:
        with self._timed(phase):
            call()

    @contextmanager
    def _timed(self, phase: str) -> Iterator[None]:
        started = time.monotonic()
        try:
            yield
        finally:
            self.timings[phase] = time.monotonic() - started


def _logged_error(lines: list[str], index: int) -> str:
    """The message at ``lines[index]`` and the exception that ends its logged traceback."""
    message = lines[index].split("] ", 1)[-1]
    last = None
    for line in lines[index + 1 :]:
        if " ERROR " not in line:
            break
        text = line.split(" ERROR ", 1)[1].split(" ", 1)[-1].strip()
        if text and not text.startswith(("File ", "^", "Traceback", "During handling")):
            last = text
    return f"{message} ({last})" if last and last not in message else message


def _service_roles() -> tuple[Role, ...]:
    """admin, and the service role where bootvol knows it."""
    return (Role.ADMIN, *(role for role in Role if role.value == "service"))


def _openstack_command() -> str:
    beside = Path(sys.executable).with_name("openstack")
    return str(beside if beside.exists() else REPO / ".venv" / "bin" / "openstack")


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


# The layout the tests and the demo share ---------------------------------------------------
def two_backend_layout(
    flexvols: Mapping[str, Path], *, volume_driver: str = BOOTVOL_DRIVER
) -> tuple[StorageLayout, tuple[CinderBackend, ...]]:
    """One cluster (ONTAP 9.14.1), one SVM with vStorage, FlexVols ``images``, ``vol_a`` and
    ``vol_b`` at ``flexvols``' paths, each exported as ``fileserver:/exports/<name>``;
    backend ``bv_a`` has pool vol_a, ``bv_b`` pool vol_b, and each lists the others as
    sources (``volumes:false``)."""
    storage = StorageLayout(
        clusters=(ClusterSettings(name="cluster1", version="9.14.1"),),
        svms=(SvmSettings(name="svm1", cluster="cluster1", vstorage=True),),
        flexvols=tuple(
            FlexVolSettings(
                name=name, svm="svm1", path=flexvols[name], export=f"fileserver:/exports/{name}"
            )
            for name in (IMAGE_STORE, *BACKEND_POOLS.values())
        ),
    )
    backends = tuple(
        bootvol_backend(name, storage=storage, pools=[pool], volume_driver=volume_driver)
        for name, pool in BACKEND_POOLS.items()
    )
    return storage, backends


@contextmanager
def throwaway_flexvols(
    base: Path, names: Sequence[str] = (IMAGE_STORE, *BACKEND_POOLS.values()), *, size_mib: int
) -> Iterator[dict[str, Path]]:
    """One XFS (reflink=1) loopback filesystem per FlexVol, mounted at ``base/<name>``, so
    that copy offload between FlexVols crosses filesystems; unmounted after, and returns
    once their loop devices are detached."""
    reason = loopback_unavailable()
    if reason is not None:
        raise StackError(f"loopback FlexVols cannot be made here: {reason}")
    try:
        with ExitStack() as stack:
            yield {
                name: stack.enter_context(
                    mounted_filesystem(FsKind.XFS, base / name, size_mib=size_mib)
                )
                for name in names
            }
    finally:
        _wait_for_loop_devices_to_leave(base)


def _wait_for_loop_devices_to_leave(base: Path, *, timeout: float = 30.0) -> None:
    """``umount -l`` returns at once; the kernel detaches an autoclear loop device a moment
    later, once the filesystem is released."""
    deadline = time.monotonic() + timeout
    while left := _loop_devices_under(base):
        if time.monotonic() > deadline:
            log.warning("loop devices still attached %.0f s after unmounting: %s", timeout, left)
            return
        threading.Event().wait(0.05)


def _loop_devices_under(base: Path) -> list[str]:
    devices = []
    for backing in Path("/sys/block").glob("loop*/loop/backing_file"):
        try:
            if backing.read_text().startswith(f"{base}/"):
                devices.append(backing.parent.parent.name)
        except OSError:  # detached while we looked
            continue
    return devices
