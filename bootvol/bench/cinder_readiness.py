"""When the Cinder stack is ready, and why it is not: conditions read from Cinder's API and
cinder-volume's log, never waited out with sleeps.

Ready means: cinder-api answers; the os-services API shows the scheduler and every backend's
cinder-volume ``up``; and the scheduler's pool list (``scheduler-stats/get_pools``) has every
backend, without which a new volume fails with "No valid backend".
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from bootvol.bench.cinder_client import CinderClient, StackError

FIRST_CALL_SECONDS = 1.0  # the first wait for a readiness call (get_pools takes ~30 ms)
# cinder-volume logs this once per backend right after its RPC servers started
# (VolumeManager.init_host_with_rpc, Cinder 29.0.0).
LISTENING = "Initializing RPC dependent components of volume driver"
# ... and these when a backend cannot serve: "Volume service <host> failed to start." when
# the service could not even be made (cinder/cmd/volume.py), "Failed to initialize driver."
# when the driver's setup raised (cinder/volume/manager.py); cinder-volume keeps running.
FAILED = ("failed to start", "Failed to initialize driver")


class Readiness:
    """Each check returns what is still awaited, in words, or None when it holds."""

    def __init__(
        self, *, client: CinderClient, volume_log: Path, host: str, backends: Sequence[str]
    ) -> None:
        self._client = client
        self._volume_log = volume_log
        self._host = host
        self._backends = list(backends)
        self._call_seconds = FIRST_CALL_SECONDS

    def backends_not_listening(self) -> str | None:
        listening = sum(LISTENING in line for line in self._log_lines())
        if listening < len(self._backends):
            return f"cinder-volume to listen ({listening} of {len(self._backends)} backends)"
        return None

    def failed_backend(self) -> str | None:
        """The logged error of a backend that failed to start, if one did."""
        lines = self._log_lines()
        for index, line in enumerate(lines):
            if any(sign in line for sign in FAILED):
                return _logged_error(lines, index)
        return None

    def not_ready(self) -> str | None:
        """A server error or a refused connection is "not yet"; a client error (a refused
        token, say) is fatal."""
        try:
            with httpx.Client(timeout=10) as client:
                client.get(f"{self._client.cinder_url}/")
            return self._services_not_up() or self._pools_not_known()
        except httpx.TransportError:
            return "cinder-api to answer"

    def _services_not_up(self) -> str | None:
        body = self._get("/os-services")
        if body is None:
            return "cinder-api to answer /os-services"
        up = {(s["binary"], s["host"]) for s in body["services"] if s["state"] == "up"}
        expected = [("cinder-scheduler", self._host)]
        expected += [("cinder-volume", f"{self._host}@{name}") for name in self._backends]
        missing = [f"{binary} on {host}" for binary, host in expected if (binary, host) not in up]
        return f"services up: {', '.join(missing)}" if missing else None

    def _pools_not_known(self) -> str | None:
        body = self._get("/scheduler-stats/get_pools")
        if body is None:
            return "cinder-api to answer /scheduler-stats/get_pools"
        known = {pool["name"].split("#", 1)[0] for pool in body["pools"]}
        missing = [name for name in self._backends if f"{self._host}@{name}" not in known]
        return f"the scheduler to know the pools of {', '.join(missing)}" if missing else None

    def _get(self, path: str) -> Any:
        """GET ``path``; None for "not yet": a server error, or no answer in time.

        get_pools is an RPC call to the scheduler, which is "up" (its database record) a
        moment before it listens; a call sent in that moment is lost, and cinder-api answers
        500 only at ``rpc_response_timeout`` (60 s). So we do not wait for that answer but
        ask again, waiting twice as long each time (a loaded machine is slow, not lost)."""
        try:
            response = self._client.request("GET", path, timeout=self._call_seconds)
        except httpx.TimeoutException:
            self._call_seconds = min(2 * self._call_seconds, 60)
            return None
        if response.status_code >= 500:
            return None
        if response.status_code >= 400:
            raise StackError(f"GET {path}: {response.status_code} {response.text}")
        return response.json()

    def _log_lines(self) -> list[str]:
        if not self._volume_log.exists():
            return []
        return self._volume_log.read_text(errors="replace").splitlines()


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
