"""Glance's JSON-patch rules for image updates: which attributes change, and how.

Glance (api-ref "Update image") takes ``add``, ``replace`` and ``remove`` operations on
top-level paths. Core attributes have fixed types; some are read-only (403), some only the
admin may set; every other path is an additional property whose value is a string.
Removing or replacing a property that does not exist is a conflict (409).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from bootvol.db.models import ImageStatus, Visibility
from bootvol.errors import Conflict, Forbidden, InvalidRequest
from bootvol.images.inspect import DISK_FORMATS

CONTAINER_FORMATS = ("bare",)

# Attributes the server computes: a patch may not touch them (Glance answers 403).
READ_ONLY = frozenset(
    {
        "id",
        "status",
        "checksum",
        "os_hash_algo",
        "os_hash_value",
        "size",
        "virtual_size",
        "created_at",
        "updated_at",
        "self",
        "file",
        "schema",
        "direct_url",
        "locations",
    }
)
# Glance's reserved names: neither core attributes nor properties.
RESERVED = frozenset({"deleted", "deleted_at", "location"})
# Glance keeps properties named os_glance_* for itself (import's state and the like).
RESERVED_PREFIX = "os_glance"


def is_reserved(name: str) -> bool:
    return name in RESERVED or name.startswith(RESERVED_PREFIX)


# Core attributes a patch may set, and the column each one lives in.
CORE = {
    "name": "name",
    "visibility": "visibility",
    "protected": "protected",
    "os_hidden": "hidden",
    "min_disk": "min_disk",
    "min_ram": "min_ram",
    "tags": "tags",
    "disk_format": "disk_format",
    "container_format": "container_format",
    "owner": "owner",
}


@dataclass(frozen=True)
class PatchOperation:
    op: Literal["add", "replace", "remove"]
    path: str  # "/name", "/hw_disk_bus", … (JSON pointer, one level)
    value: Any = None

    @property
    def attribute(self) -> str:
        if not self.path.startswith("/") or "/" in self.path[1:]:
            raise InvalidRequest(
                f"Invalid JSON pointer for this resource: {self.path!r} "
                "(only top-level attributes, like /name)"
            )
        return self.path[1:].replace("~1", "/").replace("~0", "~")


def apply_patch(
    *,
    status: ImageStatus,
    properties: Mapping[str, Any],
    operations: Iterable[PatchOperation],
    is_admin: bool,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Return (column changes, new properties) after ``operations``; raise on a bad one."""
    changes: dict[str, Any] = {}
    props = dict(properties)
    for operation in operations:
        name = operation.attribute
        if name in READ_ONLY:
            raise Forbidden(f"Attribute '{name}' is read-only.")
        if is_reserved(name):
            raise Forbidden(f"Attribute '{name}' is reserved.")
        if name in CORE:
            if operation.op == "remove":
                raise Forbidden(f"Attribute '{name}' can't be removed.")
            changes[CORE[name]] = _core_value(name, operation.value, status, is_admin)
            continue
        if operation.op == "remove":
            if name not in props:
                raise Conflict(f"Property {name} does not exist.")
            del props[name]
            continue
        if operation.op == "replace" and name not in props:
            raise Conflict(f"Property {name} does not exist.")
        if not isinstance(operation.value, str):
            raise InvalidRequest(f"Property {name} must be a string, not {operation.value!r}")
        props[name] = operation.value
    return changes, props


def check_visibility(visibility: object, *, is_admin: bool) -> Visibility:
    try:
        chosen = Visibility(str(visibility))
    except ValueError:
        allowed = ", ".join(v.value for v in Visibility)
        raise InvalidRequest(f"Invalid visibility value: {visibility} (one of {allowed})") from None
    # Glance's default policy "publicize_image": only admins make images public.
    if chosen is Visibility.PUBLIC and not is_admin:
        raise Forbidden("You are not authorized to set the visibility of an image to public")
    return chosen


def _core_value(name: str, value: Any, status: ImageStatus, is_admin: bool) -> Any:
    if name == "name":
        if value is not None and (not isinstance(value, str) or len(value) > 255):
            raise InvalidRequest("name must be a string of at most 255 characters")
        return value or ""
    if name == "visibility":
        return check_visibility(value, is_admin=is_admin)
    if name in ("protected", "os_hidden"):
        if not isinstance(value, bool):
            raise InvalidRequest(f"{name} must be true or false")
        return value
    if name in ("min_disk", "min_ram"):
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise InvalidRequest(f"{name} must be a non-negative integer")
        return value
    if name == "tags":
        if not isinstance(value, list) or not all(
            isinstance(t, str) and len(t) <= 255 for t in value
        ):
            raise InvalidRequest("tags must be a list of strings")
        return list(dict.fromkeys(value))  # Glance keeps tags unique
    if name == "owner":
        if not is_admin:
            raise Forbidden("Only an admin may change the owner of an image")
        if value is not None and not isinstance(value, str):
            raise InvalidRequest("owner must be a project id")
        return value
    # disk_format / container_format: only before bytes exist, as Glance rules.
    if status != ImageStatus.QUEUED:
        raise Forbidden(f"Attribute {name} can be only replaced for a queued image.")
    allowed = DISK_FORMATS if name == "disk_format" else CONTAINER_FORMATS
    if value not in allowed:
        raise InvalidRequest(f"{name} {value!r} is not one of {', '.join(allowed)}")
    return value
