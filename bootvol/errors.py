"""The one exception tree of bootvol.

Every error a user can meet is one of these; library errors (OSError, SQLAlchemy,
httpx, qemu-img exit codes) are translated where they happen, with ``raise … from exc``,
into a class below whose message says what went wrong and what to do about it.

    BootvolError                     exit 1
    ├── ConfigError                  exit 2   the TOML file is malformed or inconsistent
    ├── NotFound                     exit 3   an image, volume or FlexVol name/id is unknown
    │   └── ImageNotFound                     … an image, named by a request (imageRef)
    ├── InvalidRequest               exit 4   the request itself cannot be honoured
    │   ├── ImageRefused                      untrusted image bytes failed a safety check
    │   ├── UnsupportedVersion                the API microversion asked for is not served
    │   └── UnsupportedMediaType              the request body's Content-Type is not accepted
    ├── Conflict                     exit 5   the object is in a state that forbids the operation
    │   └── ClaimLost                         another worker took over the volume being made
    ├── InsufficientSpace            exit 6   no FlexVol has room
    │   └── NoValidHost                       no compute host is up with room for a server
    ├── StorageError                 exit 7   a storage operation failed
    │   └── CloneNotSupported                 the filesystem cannot reflink (workflow falls back)
    ├── HypervisorError              exit 13  libvirt refused or failed (define, start, stop…)
    ├── AddressInUse                 exit 14  `bootvol serve` cannot listen on its address
    ├── Unauthorized                 exit 9   unknown credentials, or a missing/expired token
    ├── Forbidden                    exit 10  the caller's role or project does not allow it
    ├── QuotaExceeded                exit 11  the project's volume or gigabyte quota is used up
    └── BenchmarkFailed              exit 12  a benchmark's volume took another path, or a tool
                                              it runs beside bootvol failed

(Exit code 8 is the CLI's own: a volume that ended in ``error``.)

The API layer (bootvol.api.errors) maps the same classes onto OpenStack error bodies and
status codes; the CLI prints the message and exits with ``exit_code``.
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


class ImageNotFound(NotFound):
    """No image with that id or name is visible to the caller.

    Its own class because OpenStack answers differently by where the image was named: a
    URL path that names no image is 404, an ``imageRef`` in a volume request is 400.
    """


class InvalidRequest(BootvolError):
    exit_code = 4


class ImageRefused(InvalidRequest):
    """The image's bytes are unsafe or are not what its record declares."""


class UnsupportedVersion(InvalidRequest):
    """The API microversion asked for is outside the range this server supports."""


class UnsupportedMediaType(InvalidRequest):
    """The request body's Content-Type is not one the operation accepts."""


class Conflict(BootvolError):
    exit_code = 5


class InsufficientSpace(BootvolError):
    exit_code = 6


class NoValidHost(InsufficientSpace):
    """Nova's NoValidHost: the server ends ERROR with this as its fault (code 500)."""


class StorageError(BootvolError):
    exit_code = 7


class ClaimLost(Conflict):
    """Another worker took over the volume this one was making (this one stalled too long)."""


class CloneNotSupported(StorageError):
    """The FlexVol's filesystem refuses FICLONE (ext4, tmpfs, or two different filesystems)."""


class AddressInUse(BootvolError):
    """The address ``bootvol serve`` was to listen on is taken (or not this machine's)."""

    exit_code = 14


class Unauthorized(BootvolError):
    """The credentials are wrong, or the token is missing, unknown or expired."""

    exit_code = 9


class Forbidden(BootvolError):
    """The caller is known but its role or project does not allow the operation."""

    exit_code = 10


class QuotaExceeded(BootvolError):
    """Honouring the request would take a project past its volume or gigabyte quota."""

    exit_code = 11


class BenchmarkFailed(BootvolError):
    """``bootvol bench``: a volume took another path than the one being measured, or a
    tool of the by-hand reference (curl, sha512sum, qemu-img) failed."""

    exit_code = 12


class HypervisorError(BootvolError):
    """libvirt refused or failed an operation on a server's domain."""

    exit_code = 13
