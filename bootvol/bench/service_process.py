"""``bootvol serve`` on the benchmark's estate, in its own process, as operators run it.

The load and API benchmarks send their requests from this process; the service must not
share its interpreter lock with them (a client's hundred threads would be measured as the
service's slowness). The child serves the same config (and so the same database and
FlexVols) as the benchmark's ``Bootvol``, which checks the results.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys
import time
from pathlib import Path
from types import TracebackType

import httpx

from bootvol.bench.processes import Child, start_child, stop_children
from bootvol.errors import AddressInUse, BenchmarkFailed

START_TIMEOUT_S = 120.0  # a bound for a hang, not a target
STOP_GRACE_S = 60.0  # volumes being made get this long to finish
PORT_ATTEMPTS = 5


class ServiceProcess:
    """``with ServiceProcess(config, workers=2, log=path) as service: service.base_url``."""

    def __init__(self, config: Path, *, workers: int, log: Path) -> None:
        self._config = config
        self._workers = workers
        self._log = log
        self._child: Child | None = None
        self.base_url = ""

    def __enter__(self) -> ServiceProcess:
        command = [sys.executable, "-m", "bootvol", "--config", str(self._config), "serve"]
        for _attempt in range(PORT_ATTEMPTS):
            port = _free_port()
            self.base_url = f"http://127.0.0.1:{port}"
            self._child = start_child(
                "bootvol serve",
                [*command, "--port", str(port), "--workers", str(self._workers)],
                output=self._log,
                env=os.environ,
            )
            try:
                if self._wait_until_serving(self._child):
                    return self
            except BaseException:
                self._stop()
                raise
            self._stop()  # the port was taken between our probe and its bind: another
        raise BenchmarkFailed(f"`bootvol serve` found {PORT_ATTEMPTS} free ports taken")

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop()

    def kill(self) -> None:
        """SIGKILL the service and its children at once, as a power cut would: nothing of
        it runs a cleanup (crash tests)."""
        if self._child is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._child.process.pid, signal.SIGKILL)
            self._stop()  # reaps them

    def _wait_until_serving(self, child: Child) -> bool:
        """True once it answers; False when its port was taken meanwhile (exit 14)."""
        deadline = time.monotonic() + START_TIMEOUT_S
        while child.alive() and time.monotonic() < deadline:
            try:
                httpx.get(f"{self.base_url}/identity/v3", timeout=5).raise_for_status()
                return True
            except httpx.HTTPError:
                time.sleep(0.05)  # not listening yet: the child is still importing
        if child.process.poll() == AddressInUse.exit_code:
            return False
        raise BenchmarkFailed(
            f"`bootvol serve` did not start (exit status {child.process.poll()}); "
            f"its output:\n{self._tail()}"
        )

    def _stop(self) -> None:
        if self._child is not None:
            # SIGTERM: uvicorn shuts down, the workers finish what they hold; then the
            # whole group (qemu-img children included) is gone.
            stop_children([self._child], grace_seconds=STOP_GRACE_S)
            self._child = None

    def _tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self._log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no output)"


def _free_port() -> int:
    """A port free now on loopback (the kernel's pick; the child binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
