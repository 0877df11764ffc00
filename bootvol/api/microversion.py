"""Cinder's microversions: which one a request asks for, and the range this server serves.

A request names its version in ``OpenStack-API-Version: volume 3.x`` (or ``latest``); none
means 3.0, which answers exactly as Cinder 3.0 does, without any later field. A version
outside MIN..MAX is refused with 406 (api-ref "API microversions").
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bootvol.errors import InvalidRequest, UnsupportedVersion

HEADER = "OpenStack-API-Version"
SERVICE = "volume"


@dataclass(frozen=True, order=True)
class APIVersion:
    major: int
    minor: int

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}"

    def at_least(self, text: str) -> bool:
        major, minor = text.split(".")
        return self >= APIVersion(int(major), int(minor))


MIN = APIVersion(3, 0)
# 3.48 adds shared_targets and service_uuid; 3.50 would announce multiattach, which
# bootvol (one attachment per volume) does not have.
MAX = APIVersion(3, 48)

_VERSION = re.compile(r"^([1-9]\d*)\.(0|[1-9]\d*)$")


def requested(header: str | None) -> APIVersion:
    """The version a request's ``OpenStack-API-Version`` header asks for."""
    if not header:
        return MIN
    for part in header.split(","):
        service, _, value = part.strip().partition(" ")
        if service.lower() != SERVICE:
            continue
        value = value.strip()
        if value.lower() == "latest":
            return MAX
        match = _VERSION.match(value)
        if match is None:
            raise InvalidRequest(f"API version string {value!r} is not valid (like 3.0)")
        version = APIVersion(int(match[1]), int(match[2]))
        if not MIN <= version <= MAX:
            raise UnsupportedVersion(
                f"Version {version} is not supported by the API. "
                f"Minimum is {MIN} and maximum is {MAX}."
            )
        return version
    return MIN
