"""User metadata of volumes and snapshots, as Cinder keeps it: string keys and values of 1 to
255 characters, merged or replaced, one key deleted at a time.

Keys starting with ``bootvol:`` are bootvol's own (the API shows a volume's provisioning
record under them): a user may neither set nor delete them, with the same 400 for both.
"""

from __future__ import annotations

from collections.abc import Mapping

from bootvol.errors import InvalidRequest, NotFound

RESERVED_PREFIX = "bootvol:"


def check(metadata: Mapping[str, str]) -> None:
    for key, value in metadata.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise InvalidRequest("metadata keys and values must be strings")
        if not key or len(key) > 255 or len(value) > 255:
            raise InvalidRequest("metadata keys and values are 1 to 255 characters")
        _refuse_reserved(key)


def merged(
    current: Mapping[str, str] | None, items: Mapping[str, str], *, replace: bool
) -> dict[str, str]:
    """``items`` merged into ``current``, or in its place."""
    check(items)
    return {**({} if replace else dict(current or {})), **items}


def without(current: Mapping[str, str] | None, key: str, *, owner: str) -> dict[str, str]:
    """``current`` less ``key``; NotFound (naming ``owner``, "Volume 1234") if absent."""
    _refuse_reserved(key)
    if key not in (current or {}):
        raise NotFound(f"{owner} has no metadata with key {key}.")
    return {k: v for k, v in (current or {}).items() if k != key}


def _refuse_reserved(key: str) -> None:
    if key.startswith(RESERVED_PREFIX):
        raise InvalidRequest(f"metadata keys starting with {RESERVED_PREFIX!r} are bootvol's")
