"""``bootvol serve`` on the benchmark's estate, in its own process, as operators run it.

The load and API benchmarks send their requests from this process; the service must not
share its interpreter lock with them (a client's hundred threads would be measured as the
service's slowness). The child serves the same config (and so the same database and
FlexVols) as the benchmark's ``Bootvol``, which checks the results.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

import httpx

from bootvol.errors import BenchmarkFailed

START_TIMEOUT_S = 120.0  # a bound for a hang, not a target


class ServiceProcess:
    """``with ServiceProcess(config, workers=2, log=path) as service: service.base_url``."""

    def __init__(self, config: Path, *, workers: int, log: Path) -> None:
        self._config = config
        self._workers = workers
        self._log = log
        self._process: subprocess.Popen[bytes] | None = None
        self.base_url = ""

    def __enter__(self) -> ServiceProcess:
        port = _free_port()
        self.base_url = f"http://127.0.0.1:{port}"
        command = [sys.executable, "-m", "bootvol", "--config", str(self._config), "serve"]
        with self._log.open("wb") as log:
            self._process = subprocess.Popen(
                [*command, "--port", str(port), "--workers", str(self._workers)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        try:
            self._wait_until_serving()
        except BaseException:
            self._stop()
            raise
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop()

    def _wait_until_serving(self) -> None:
        assert self._process is not None
        deadline = time.monotonic() + START_TIMEOUT_S
        while self._process.poll() is None and time.monotonic() < deadline:
            try:
                httpx.get(f"{self.base_url}/identity/v3", timeout=5).raise_for_status()
                return
            except httpx.HTTPError:
                time.sleep(0.05)  # not listening yet: the child is still importing
        raise BenchmarkFailed(
            f"`bootvol serve` did not start (exit status {self._process.poll()}); "
            f"its output:\n{self._tail()}"
        )

    def _stop(self) -> None:
        if self._process is None:
            return
        # SIGINT, as Ctrl-C: uvicorn shuts down, then the workers finish what they hold.
        self._process.send_signal(signal.SIGINT)
        try:
            self._process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._process = None

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
