"""A private RabbitMQ for a throwaway Cinder: its own node, ports, epmd and data folder.

Debian's ``/usr/sbin/rabbitmq-server`` is a wrapper that, run as root, switches to the
``rabbitmq`` user and writes under ``/var/lib`` and ``/var/log``: one shared broker. We run the
script it wraps, ``/usr/lib/rabbitmq/bin/rabbitmq-server``, with ``RABBITMQ_*`` variables that
put everything in one folder:

    <folder>/.erlang.cookie   HOME is the folder: the node and rabbitmqctl share the cookie
    <folder>/mnesia, log/     the node's database and logs (log/<node>.log)
    <folder>/rabbit.pid       written once the node runs: what ``rabbitmqctl wait`` watches
    <folder>/server.out       the script's stdout and stderr

The node listens on 127.0.0.1 on free ports, and registers with an epmd on a private port:
Erlang starts that epmd as a daemon outside our process group, so stopping the node does
not stop it, and :meth:`PrivateRabbitMQ.stop` kills it with ``epmd -port N -kill``.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from bootvol.bench.processes import Child, start_child, stop_children

RABBITMQ_BIN = Path("/usr/lib/rabbitmq/bin")
SERVER = RABBITMQ_BIN / "rabbitmq-server"
CTL = RABBITMQ_BIN / "rabbitmqctl"
START_TIMEOUT_SECONDS = 120.0


def rabbitmq_unavailable() -> str | None:
    """Why a private RabbitMQ cannot start here, or None when it can."""
    if not SERVER.exists() or not CTL.exists():
        return f"RabbitMQ is not installed ({SERVER} missing; apt-get install rabbitmq-server)"
    if _epmd() is None:
        return "epmd (Erlang's port mapper, from erlang-base) is not installed"
    return None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True)
class RabbitPorts:
    amqp: int  # what Cinder connects to
    distribution: int  # Erlang distribution: rabbitmqctl talks to the node here
    epmd: int


class PrivateRabbitMQ:
    """``with PrivateRabbitMQ(folder) as rabbit: rabbit.transport_url``.

    :meth:`start` returns at once; :meth:`wait_ready` blocks until the node runs the
    RabbitMQ application (the caller may do other work in between).
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.node = f"bootvol-{uuid.uuid4().hex[:8]}@localhost"
        self.ports = RabbitPorts(amqp=free_port(), distribution=free_port(), epmd=free_port())
        self._server: Child | None = None

    @property
    def transport_url(self) -> str:
        # guest/guest: RabbitMQ's default user, allowed from loopback only.
        return f"rabbit://guest:guest@127.0.0.1:{self.ports.amqp}/"

    @property
    def pid_file(self) -> Path:
        return self.folder / "rabbit.pid"

    @property
    def logs(self) -> list[Path]:
        return [self.folder / "server.out", self.folder / "log" / f"{self.node}.log"]

    def environment(self) -> dict[str, str]:
        """What the server and rabbitmqctl both need to find the same node."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RABBITMQ_", "ERL_"))}
        env.update(
            HOME=str(self.folder),
            RABBITMQ_NODENAME=self.node,
            RABBITMQ_NODE_IP_ADDRESS="127.0.0.1",
            RABBITMQ_NODE_PORT=str(self.ports.amqp),
            RABBITMQ_DIST_PORT=str(self.ports.distribution),
            ERL_EPMD_PORT=str(self.ports.epmd),
            RABBITMQ_MNESIA_BASE=str(self.folder / "mnesia"),
            RABBITMQ_LOG_BASE=str(self.folder / "log"),
            RABBITMQ_PID_FILE=str(self.pid_file),
            RABBITMQ_ENABLED_PLUGINS_FILE=str(self.folder / "enabled_plugins"),
            RABBITMQ_CONFIG_FILE=str(self.folder / "rabbitmq"),  # absent: the defaults
        )
        return env

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / "enabled_plugins").write_text("[].\n")  # no management plugin
        self._server = start_child(
            "rabbitmq-server",
            [str(SERVER)],
            output=self.folder / "server.out",
            env=self.environment(),
            cwd=self.folder,
        )

    def wait_ready(self, *, timeout: float = START_TIMEOUT_SECONDS) -> None:
        """Return once the node runs RabbitMQ; raise if the server exits first."""
        assert self._server is not None, "start() first"
        waiter = subprocess.Popen(
            [str(CTL), "wait", "--timeout", str(int(timeout)), str(self.pid_file)],
            env=self.environment(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout + 10
        try:
            while waiter.poll() is None:
                if not self._server.alive():
                    raise RuntimeError(
                        f"rabbitmq-server exited with status {self._server.process.returncode} "
                        f"while starting; see {self.logs[0]}"
                    )
                if time.monotonic() > deadline:
                    raise RuntimeError(f"rabbitmqctl wait did not return in {timeout:.0f} s")
                threading.Event().wait(0.05)
        finally:
            if waiter.poll() is None:
                waiter.kill()
            output, _ = waiter.communicate()
        if waiter.returncode != 0:
            raise RuntimeError(
                f"RabbitMQ did not start (rabbitmqctl wait: status {waiter.returncode}): "
                f"{output.decode(errors='replace').strip()[-2000:]}; see {self.logs[0]}"
            )

    def stop(self) -> None:
        """Stop the node, and whatever of its process group is left, then its epmd.

        SIGTERM, not ``rabbitmqctl stop``: the server script and the node trap it and shut
        down as gracefully (the node logs "SIGTERM received - shutting down"), in ~1 s,
        where ``rabbitmqctl`` first boots an Erlang VM of its own and takes ~2.5 s.
        """
        if self._server is None:
            return
        try:
            stop_children([self._server], grace_seconds=30)
        finally:
            self._server = None
            epmd = _epmd()
            if epmd is not None:
                subprocess.run(
                    [epmd, "-port", str(self.ports.epmd), "-kill"],
                    stdin=subprocess.DEVNULL,
                    capture_output=True,
                    timeout=30,
                    check=False,
                )

    def __enter__(self) -> PrivateRabbitMQ:
        self.start()
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def _epmd() -> str | None:
    fallback = Path("/usr/lib/erlang/bin/epmd")  # where erlang-base puts it, PATH or not
    return shutil.which("epmd") or (str(fallback) if fallback.exists() else None)
