"""A server's build record: where the time went between the request and the guest."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bootvol.volumes.records import ProvisioningRecord


@dataclass(frozen=True)
class BuildRecord:
    """Filled in as the build goes: the boot volume's provisioning record (when the build
    made the volume), then the domain's define-and-start, then request → ``ACTIVE``, and at
    last request → the guest's first console line. Seconds; None until known."""

    volume: ProvisioningRecord | None = None
    domain_start_s: float | None = None
    request_to_active_s: float | None = None
    guest_line_s: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "volume": self.volume.to_json() if self.volume else None,
            "domain_start_s": self.domain_start_s,
            "request_to_active_s": self.request_to_active_s,
            "guest_line_s": self.guest_line_s,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> BuildRecord:
        volume = data.get("volume")
        return cls(
            volume=ProvisioningRecord.from_json(volume) if volume else None,
            domain_start_s=data.get("domain_start_s"),
            request_to_active_s=data.get("request_to_active_s"),
            guest_line_s=data.get("guest_line_s"),
        )

    def as_metadata(self) -> dict[str, str]:
        """The record as ``bootvol:`` metadata (as volumes show their provisioning)."""
        shown: dict[str, object] = {
            "domain_start_s": self.domain_start_s,
            "request_to_active_s": self.request_to_active_s,
            "guest_line_s": self.guest_line_s,
        }
        if self.volume is not None:
            shown |= {
                "volume_path": self.volume.path,
                "volume_seconds": self.volume.seconds,
                "volume_host_bytes": self.volume.host_bytes,
            }
        return {f"bootvol:{key}": str(value) for key, value in shown.items() if value is not None}
