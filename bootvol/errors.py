"""The one exception tree of bootvol.

Every error a user can meet is one of these; library errors (OSError, SQLAlchemy,
httpx, qemu-img exit codes) are translated where they happen, with ``raise … from exc``,
into a class below whose message says what went wrong and what to do about it.

    BootvolError                     exit 1
    ├── ConfigError                  exit 2   the TOML file is malformed or inconsistent
    ├── NotFound                     exit 3   an image, volume or FlexVol name/id is unknown
    ├── InvalidRequest               exit 4   the request itself cannot be honoured
    │   └── ImageRefused                      untrusted image bytes failed a safety check
    ├── Conflict                     exit 5   the object is in a state that forbids the operation
    ├── InsufficientSpace            exit 6   no FlexVol has room
    └── StorageError                 exit 7   a storage operation failed
        └── CloneNotSupported                 the filesystem cannot reflink (workflow falls back)

The API layer (a later issue) maps the same classes onto OpenStack error bodies; the CLI
prints the message and exits with ``exit_code``.
"""

from __future__ import annotations


class BootvolError(Exception):
    """Base of every error bootvol raises on purpose."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigError(BootvolError):
    exit_code = 2


class NotFound(BootvolError):
    exit_code = 3


class InvalidRequest(BootvolError):
    exit_code = 4


class ImageRefused(InvalidRequest):
    """The image's bytes are unsafe or are not what its record declares."""


class Conflict(BootvolError):
    exit_code = 5


class InsufficientSpace(BootvolError):
    exit_code = 6


class StorageError(BootvolError):
    exit_code = 7


class CloneNotSupported(StorageError):
    """The FlexVol's filesystem refuses FICLONE (ext4, tmpfs, or two different filesystems)."""
