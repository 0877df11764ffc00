"""Which compute host runs a new server: one that is up and has room, the emptiest first.

Room is Nova's: a host offers ``vcpus × cpu_allocation_ratio`` vCPUs and ``ram_mib ×
ram_allocation_ratio`` MiB of RAM (overcommit), less what the servers already placed on it
take. Among hosts with room, the one with the most free RAM wins (Nova's RAM weigher).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bootvol.compute.hosts import HostState
from bootvol.errors import NoValidHost


@dataclass(frozen=True)
class Request:
    vcpus: int
    ram_mib: int


def choose_host(
    hosts: Sequence[HostState],
    request: Request,
    *,
    cpu_allocation_ratio: float,
    ram_allocation_ratio: float,
) -> HostState:
    """The host for ``request``; NoValidHost (with each host's reason) when none has room."""
    reasons = []
    candidates = []
    for host in hosts:
        free_vcpus = host.vcpus * cpu_allocation_ratio - host.used_vcpus
        free_ram = host.ram_mib * ram_allocation_ratio - host.used_ram_mib
        if not host.up:
            reasons.append(f"{host.name} is down")
        elif free_vcpus < request.vcpus:
            reasons.append(f"{host.name} has {free_vcpus:g} vCPUs free")
        elif free_ram < request.ram_mib:
            reasons.append(f"{host.name} has {free_ram:g} MiB of RAM free")
        else:
            candidates.append((free_ram, host))
    if not candidates:
        detail = "; ".join(reasons) or "no compute host is registered"
        raise NoValidHost(
            "No valid host was found. There are not enough hosts available. "
            f"({request.vcpus} vCPUs, {request.ram_mib} MiB wanted: {detail})"
        )
    return max(candidates, key=lambda pair: pair[0])[1]
