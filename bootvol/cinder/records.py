"""Provisioning records as Cinder volume metadata: ``bootvol:*`` string keys.

Cinder keeps metadata values as strings of at most 255 characters (MySQL and PostgreSQL
enforce it), so the record is spread over one key per field, a key per skipped path with
its reason, and the steps in one line, each cut to fit. The keys show in ``openstack volume
show`` (properties) to the volume's owner and to admins.
"""

from __future__ import annotations

from collections.abc import Mapping

from bootvol.volumes.records import ProvisioningRecord

PREFIX = "bootvol:"
MAX_VALUE = 255  # Cinder's volume_metadata.value: String(255)


def as_metadata(record: ProvisioningRecord) -> dict[str, str]:
    """The record's fields as ``bootvol:`` keys; long values end in "…"."""
    fields = {
        "path": str(record.path) if record.path else "",
        "source": record.source,
        "seconds": f"{record.seconds:.3f}",
        "host_bytes": str(record.host_bytes),
        "clone_method": str(record.clone_method or ""),
        "copy_method": record.copy_method or "",
        "filled_cache": "true" if record.filled_cache else "false",
        "steps": "; ".join(
            f"{s.name} {s.seconds:.3f}s" + (f" ({s.detail})" if s.detail else "")
            for s in record.steps
        ),
    }
    fields |= {f"skipped:{step}": reason for step, reason in record.skipped.items()}
    return {f"{PREFIX}{key}": _fit(value) for key, value in fields.items() if value}


def merged(existing: Mapping[str, str], record: ProvisioningRecord) -> dict[str, str]:
    """``existing`` metadata with its ``bootvol:`` keys replaced by ``record``'s (Cinder
    replaces a volume's whole metadata on save, so the user's keys must be carried)."""
    kept = {k: v for k, v in existing.items() if not k.startswith(PREFIX)}
    return kept | as_metadata(record)


def _fit(value: str) -> str:
    return value if len(value) <= MAX_VALUE else value[: MAX_VALUE - 1] + "…"
