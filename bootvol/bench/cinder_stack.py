"""The real OpenStack Cinder running bootvol's driver, brought up and down whole.

``with CinderStack(work, storage=…, backends=…) as stack:`` starts, overlapping what can
overlap (RabbitMQ boots while the rest is made):

    rabbit/       a private RabbitMQ (rabbitmq.py): its own node, ports and epmd
    (elsewhere)   a throwaway PostgreSQL for Cinder's database (postgres.py): SQLite fails
                  with "database is locked" as soon as Cinder's services write at once
    bootvol/      bootvol's Keystone and Glance in this process (cinder_bootvol.py)
    cinder/       cinder.conf (cinder_conf.py), ``cinder-manage db sync``, then cinder-api,
                  cinder-volume and cinder-scheduler from the Cinder venv, each in a session
                  of its own (processes.py), logs in cinder/logs
    clouds.yaml   clouds ``admin`` and ``member`` for the ``openstack`` command

and returns once the stack is ready by conditions, never by sleeping: the API answers,
the os-services API shows the scheduler and every backend's cinder-volume ``up``, and the
scheduler's pool list has every backend (before that, a new volume would fail with "No valid
backend"). Then it makes one volume type per backend (``volume_backend_name``).

Leaving the block stops everything it started, whatever happened: the Cinder services by
process group (and their descendants that left it), bootvol, RabbitMQ and its epmd,
PostgreSQL; then it kills whatever still names one of its folders, saying so. Mounts belong to
the caller (cinder_layout.py makes XFS reflink FlexVols on loop devices).
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
import secrets
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, ExitStack, contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from bootvol.bench.cinder_bootvol import (
    SERVICE_PROJECT,
    SERVICE_USER,
    BootvolService,
    bootvol_service,
)
from bootvol.bench.cinder_client import CinderClient, StackError, StackUser
from bootvol.bench.cinder_conf import CinderBackend, CinderConf, ServiceUser, StorageLayout
from bootvol.bench.cinder_layout import IMAGE_STORE
from bootvol.bench.cinder_readiness import Readiness
from bootvol.bench.postgres import PostgresServer, postgres_unavailable, throwaway_postgres
from bootvol.bench.processes import Child, kill_pids, processes_naming, start_child, stop_children
from bootvol.bench.rabbitmq import PrivateRabbitMQ, free_port, rabbitmq_unavailable

__all__ = ["CinderStack", "StackError", "StackUser", "cinder_unavailable"]

log = logging.getLogger(__name__)
T = TypeVar("T")

REPO = Path(__file__).resolve().parents[2]
CINDER_VENV = REPO / ".cinder-venv"
CINDER_SERVICES = ("cinder-api", "cinder-scheduler", "cinder-volume")
CINDER_HOST = "stack"  # services register as "stack", backends as "stack@<backend>"


def cinder_unavailable(venv: Path = CINDER_VENV) -> str | None:
    """Why the real Cinder stack cannot run here, or None when it can."""
    if not (venv / "bin" / "cinder-volume").exists():
        return f"no Cinder in {venv} (./scripts/setup builds it)"
    return rabbitmq_unavailable() or postgres_unavailable()


class CinderStack:
    """The stack, and what its drivers use: :meth:`openstack`, :meth:`cinder`,
    :meth:`wait_for_volume`, ``clouds_yaml``, ``users``, ``bootvol`` (Keystone and Glance),
    :attr:`cinder_version`, :attr:`log_paths` and :meth:`failure_report`, ``timings``."""

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
        self.cinder_port = free_port()
        self.cinder_url = f"http://127.0.0.1:{self.cinder_port}"
        self.clouds_yaml = self.work / "clouds.yaml"
        self.timings: dict[str, float] = {}  # phase → seconds, for the report
        self.rabbit = PrivateRabbitMQ(self.work / "rabbit")
        self.postgres: PostgresServer | None = None
        self.conf: CinderConf | None = None
        self._bootvol: BootvolService | None = None
        self._client: CinderClient | None = None
        self._children: list[Child] = []
        self._exit = ExitStack()

    # bring-up and teardown -----------------------------------------------------------------
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
        self._exit.callback(self._kill_leftovers)  # registered first: runs last
        self._exit.callback(self._timed_call, "stop rabbitmq", self.rabbit.stop)
        self.rabbit.start()
        with self._timed("postgresql"):
            self.postgres = self._enter_timed("stop postgresql", throwaway_postgres())
            database_url = self.postgres.new_database("cinder")
        bootvol_port, service_password = free_port(), secrets.token_urlsafe(18)
        bootvol_url = f"http://127.0.0.1:{bootvol_port}"
        self.conf = CinderConf(
            folder=self.work / "cinder",
            venv=self.cinder_venv,
            host=CINDER_HOST,
            transport_url=self.rabbit.transport_url,
            api_port=self.cinder_port,
            keystone=ServiceUser(
                auth_url=f"{bootvol_url}/identity/v3",
                username=SERVICE_USER,
                password=service_password,
                project=SERVICE_PROJECT,
            ),
            glance_url=f"{bootvol_url}/image",
            database_url=database_url,
            backends=self.backends,
            debug=self.debug,
        )
        self.conf.write()
        db_sync = self._start("cinder-manage", "db", "sync")
        self._exit.callback(stop_children, [db_sync])  # a no-op once it exited
        with self._timed("bootvol"):
            self._bootvol = self._enter_timed(
                "stop bootvol",
                bootvol_service(
                    self.work / "bootvol",
                    storage=self.storage,
                    image_store=self.image_store,
                    port=bootvol_port,
                    cinder_url=self.cinder_url,
                    service_password=service_password,
                    clouds_yaml=self.clouds_yaml,
                ),
            )
        self._client = CinderClient(
            cinder_url=self.cinder_url,
            keystone_url=self._bootvol.keystone_url,
            users=self._bootvol.users,
            clouds_yaml=self.clouds_yaml,
            report=self.failure_report,
        )
        with self._timed("cinder-manage db sync"):
            self._wait_exited(db_sync)
        self._exit.callback(self._timed_call, "stop cinder", self._stop_cinder)
        # The scheduler learns the backends' pools from the stats each cinder-volume publishes
        # at start (before it listens) and that the scheduler asks for at its own start;
        # both are lost when the other side does not listen yet, and then the pools appear
        # only with the next periodic report, up to a minute later ("No valid backend" for
        # every volume meanwhile). So the scheduler starts once every backend listens.
        self._children += [self._start("cinder-api"), self._start("cinder-volume")]
        with self._timed("rabbitmq"):
            self.rabbit.wait_ready()
        readiness = Readiness(
            client=self._client,
            volume_log=self.conf.log_dir / "cinder-volume.log",
            host=CINDER_HOST,
            backends=[backend.name for backend in self.backends],
        )
        with self._timed("cinder-volume listening"):
            self._wait_until(readiness, readiness.backends_not_listening)
        self._children.append(self._start("cinder-scheduler"))
        with self._timed("cinder ready"):
            self._wait_until(readiness, readiness.not_ready)
        with self._timed("volume types"):
            for backend in self.backends:
                extra_specs = {"volume_backend_name": backend.name}
                body = {"volume_type": {"name": backend.name, "extra_specs": extra_specs}}
                self.cinder("POST", "/types", json=body)
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
    def client(self) -> CinderClient:
        if self._client is None:
            raise StackError("the stack is not started")
        return self._client

    @property
    def bootvol(self) -> BootvolService:
        if self._bootvol is None:
            raise StackError("the stack is not started")
        return self._bootvol

    @property
    def users(self) -> dict[str, StackUser]:
        return self.bootvol.users

    def openstack(
        self, *args: str, cloud: str = "admin", check: bool = True, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        """The real ``openstack`` command (.venv's) as ``cloud`` (``admin``, ``member``)."""
        return self.client.openstack(*args, cloud=cloud, check=check, timeout=timeout)

    def openstack_json(self, *args: str, cloud: str = "admin") -> Any:
        """``openstack … -f json``, parsed."""
        return self.client.openstack_json(*args, cloud=cloud)

    def cinder(self, method: str, path: str, *, cloud: str = "admin", **kwargs: Any) -> Any:
        """One Cinder API call, ``path`` under /v3/<project id> (see CinderClient.cinder)."""
        return self.client.cinder(method, path, cloud=cloud, **kwargs)

    def volume_file(self, volume: dict[str, Any]) -> Path:
        """``volume-<id>`` in the FlexVol of the volume's pool (an admin's view of the volume:
        its host, ``stack@bv_a#vol_a``, names the pool)."""
        pool = volume["os-vol-host-attr:host"].rpartition("#")[2]
        return self.storage.flexvol(pool).path / f"volume-{volume['id']}"

    def wait_for_volume(
        self,
        volume_id: str,
        statuses: Sequence[str] = ("available",),
        *,
        cloud: str = "admin",
        timeout: float = 600.0,
    ) -> dict[str, Any]:
        """The volume once its status is one of ``statuses`` ("deleted": gone); StackError
        with the logs' tails at an error status or after ``timeout``."""
        return self.client.wait_for_volume(volume_id, statuses, cloud=cloud, timeout=timeout)

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

    # Cinder's processes --------------------------------------------------------------------
    def _start(self, command: str, *args: str) -> Child:
        assert self.conf is not None
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("OS_") and k not in ("PYTHONPATH", "VIRTUAL_ENV")
        }
        env["PATH"] = f"{self.cinder_venv / 'bin'}:{env.get('PATH', '/usr/bin:/bin')}"
        python_path = [str(p) for backend in self.backends for p in backend.python_path]
        if python_path:
            env["PYTHONPATH"] = os.pathsep.join(python_path)
        return start_child(
            " ".join((command, *args)),
            [str(self.cinder_venv / "bin" / command), "--config-file", str(self.conf.path), *args],
            output=self.conf.log_dir / f"{command}.out",
            env=env,
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

    def _kill_leftovers(self) -> None:
        """Everything the stack starts names one of its folders on its command line (config
        files, RabbitMQ's paths, PostgreSQL's data folder); what still runs and does is a
        leak: kill it, and say so."""
        folders = [self.work] + ([self.postgres.base] if self.postgres is not None else [])
        for folder in folders:
            left = processes_naming(folder)
            if left:
                log.warning("processes left in %s after teardown, killed: %s", folder, left)
                kill_pids(left)

    # readiness -----------------------------------------------------------------------------
    def _wait_until(self, readiness: Readiness, not_ready: Callable[[], str | None]) -> None:
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
            failed = readiness.failed_backend()
            if failed is not None:
                raise StackError(
                    f"a Cinder volume backend failed to start: {failed}\n{self.failure_report()}"
                )
            waiting_for = not_ready()
            if waiting_for is None:
                return
            if time.monotonic() > deadline:
                raise StackError(
                    f"Cinder not ready after {self.ready_timeout:.0f} s: still waiting for "
                    f"{waiting_for}\n{self.failure_report()}"
                )
            threading.Event().wait(0.1)

    # timings -------------------------------------------------------------------------------
    def _enter_timed(self, phase: str, manager: AbstractContextManager[T]) -> T:
        """Enter ``manager`` now and leave it with the stack, timing its exit as ``phase``."""
        own = ExitStack()
        value = own.enter_context(manager)
        self._exit.callback(self._timed_call, phase, own.close)
        return value

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
