"""SQLAlchemy models: image and volume records, and the identity records of the API.

Ownership: an image or a volume belongs to a project (``owner`` / ``project_id``). Records
made by the operator's ``bootvol`` CLI have none: such images are public (every project may
boot from them) and such volumes are seen through the API only by admins with
``all_tenants``.
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Enum,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from bootvol.compute.records import BuildRecord
from bootvol.images.location import ImageLocation
from bootvol.volumes.records import FileFormat, ProvisioningRecord

DEFAULT_DOMAIN_ID = "default"  # Keystone's one domain in a fresh deployment
DEFAULT_DOMAIN_NAME = "Default"
DEFAULT_AVAILABILITY_ZONE = "nova"  # Cinder's default storage_availability_zone
DEFAULT_QUOTA_VOLUMES = 100
DEFAULT_QUOTA_GIGABYTES = 1000
DEFAULT_QUOTA_SNAPSHOTS = 10  # Cinder's default
# Nova's default quotas (nova.conf [quota] instances, cores, ram).
DEFAULT_QUOTA_INSTANCES = 10
DEFAULT_QUOTA_CORES = 20
DEFAULT_QUOTA_RAM_MIB = 51200


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def as_utc(moment: dt.datetime) -> dt.datetime:
    """A stored time as an aware UTC one: SQLite hands back naive datetimes for
    DateTime(timezone=True) columns (they are UTC), PostgreSQL aware ones."""
    return moment.astimezone(dt.UTC) if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


class Base(DeclarativeBase):
    pass


class ImageStatus(enum.StrEnum):
    """Glance's image statuses that bootvol uses."""

    QUEUED = "queued"  # record exists, no bytes yet
    SAVING = "saving"  # upload in progress
    UPLOADING = "uploading"  # import: bytes being staged, or staged and awaiting the import
    IMPORTING = "importing"  # import: staged or downloaded bytes being checked and stored
    ACTIVE = "active"  # bytes stored (or a remote location known) and usable
    KILLED = "killed"  # upload failed; the record stays to say why
    DEACTIVATED = "deactivated"  # bytes kept, but no download or new volume until reactivated


class VolumeStatus(enum.StrEnum):
    CREATING = "creating"
    DOWNLOADING = "downloading"
    AVAILABLE = "available"
    EXTENDING = "extending"
    # Attachment statuses (Cinder's): reserved for an attachment being made (attachments
    # API), attaching (os-reserve, or a hot-plug under way), in-use while attached,
    # detaching while an attachment goes.
    RESERVED = "reserved"
    ATTACHING = "attaching"
    IN_USE = "in-use"
    DETACHING = "detaching"
    ERROR = "error"
    # Cinder's, set only by an admin's os-reset_status (bootvol deletes at once, and keeps
    # no volume in maintenance itself).
    DELETING = "deleting"
    ERROR_DELETING = "error_deleting"
    MAINTENANCE = "maintenance"


class AttachStatus(enum.StrEnum):
    """Cinder's ``attach_status`` of one attachment."""

    RESERVED = "reserved"  # made, not connected yet (attachments API, os-reserve)
    ATTACHING = "attaching"  # a hot-plug into a server is under way
    ATTACHED = "attached"
    DETACHING = "detaching"  # an unplug is under way


class Visibility(enum.StrEnum):
    """Glance's image visibilities."""

    PUBLIC = "public"  # every project
    PRIVATE = "private"  # the owner only
    SHARED = "shared"  # the owner, and the projects it made members (Glance's default)
    COMMUNITY = "community"  # every project, but not in default lists


class Role(enum.StrEnum):
    """The roles bootvol's API knows; Keystone's ``admin`` implies ``member`` and ``reader``.

    ``service`` is Keystone's role for service users (a Cinder's ``[keystone_authtoken]``
    and ``[glance]`` users): it implies nothing, and OpenStack's default policies grant it
    what services need of each other (validating tokens, Glance's image locations).
    """

    ADMIN = "admin"
    MEMBER = "member"
    SERVICE = "service"  # fits the role column's 16 characters: no migration


def _enum(kind: type[enum.StrEnum], name: str, *, length: int = 16) -> Enum:
    # Store the values ("active"), not the member names, and without a native DB enum type
    # so that adding a status is a code change, not a schema migration.
    return Enum(
        kind,
        name=name,
        native_enum=False,
        length=length,
        values_callable=lambda e: [m.value for m in e],
    )


class _ProvisioningJSON(TypeDecorator[ProvisioningRecord]):
    """A volume's provisioning record, stored as JSON and read back as the typed record."""

    impl = JSON
    cache_ok = True

    def process_bind_param(self, value: ProvisioningRecord | None, dialect: Any) -> Any:
        return None if value is None else value.to_json()

    def process_result_value(self, value: Any, dialect: Any) -> ProvisioningRecord | None:
        return None if value is None else ProvisioningRecord.from_json(value)


class _BuildJSON(TypeDecorator[BuildRecord]):
    """A server's build record, stored as JSON and read back as the typed record."""

    impl = JSON
    cache_ok = True

    def process_bind_param(self, value: BuildRecord | None, dialect: Any) -> Any:
        return None if value is None else value.to_json()

    def process_result_value(self, value: Any, dialect: Any) -> BuildRecord | None:
        return None if value is None else BuildRecord.from_json(value)


class _LocationText(TypeDecorator[ImageLocation]):
    """An image's location, stored as its text and read back parsed (an ImageLocation)."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: ImageLocation | None, dialect: Any) -> str | None:
        return None if value is None else str(value)

    def process_result_value(self, value: str | None, dialect: Any) -> ImageLocation | None:
        return None if value is None else ImageLocation.parse(value)


class ImageRecord(Base):
    __tablename__ = "images"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(255), index=True)
    disk_format: Mapped[str | None] = mapped_column(String(16))  # None: queued, not set yet
    container_format: Mapped[str] = mapped_column(String(16), default="bare")
    status: Mapped[ImageStatus] = mapped_column(_enum(ImageStatus, "image_status"))
    size: Mapped[int | None] = mapped_column(BigInteger)
    virtual_size: Mapped[int | None] = mapped_column(BigInteger)
    checksum: Mapped[str | None] = mapped_column(String(32))  # md5, as Glance's `checksum`
    os_hash_algo: Mapped[str | None] = mapped_column(String(16))
    os_hash_value: Mapped[str | None] = mapped_column(String(128))
    # A file path inside a FlexVol (uploaded) or an http(s):// URL (remote, downloaded on use).
    location: Mapped[ImageLocation | None] = mapped_column(_LocationText)
    message: Mapped[str | None] = mapped_column(Text)
    owner: Mapped[str | None] = mapped_column(String(64), index=True)  # project id
    visibility: Mapped[Visibility] = mapped_column(
        _enum(Visibility, "image_visibility"), default=Visibility.PUBLIC
    )
    protected: Mapped[bool] = mapped_column(Boolean, default=False)
    hidden: Mapped[bool] = mapped_column(Boolean, default=False)  # Glance's os_hidden
    min_disk: Mapped[int] = mapped_column(Integer, default=0)  # GiB
    min_ram: Mapped[int] = mapped_column(Integer, default=0)  # MiB
    tags: Mapped[list[str] | None] = mapped_column(JSON)
    # Glance's additional properties, flat string values as the client gave them.
    properties: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )


DEFAULT_VOLUME_TYPE = "__DEFAULT__"  # Cinder's default volume type since Train
DEFAULT_VOLUME_TYPE_ID = uuid.uuid5(uuid.NAMESPACE_URL, "bootvol:volume-type:__DEFAULT__").hex


class VolumeTypeRecord(Base):
    """A Cinder volume type; its extra specs may pin its volumes to FlexVols
    (bootvol.volumes.types)."""

    __tablename__ = "volume_types"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    description: Mapped[str | None] = mapped_column(Text)
    is_public: Mapped[bool] = mapped_column(Boolean, default=True)
    extra_specs: Mapped[dict[str, str] | None] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class SnapshotStatus(enum.StrEnum):
    """Cinder's snapshot statuses that bootvol uses (a reflink is made within the request)."""

    CREATING = "creating"
    AVAILABLE = "available"
    DELETING = "deleting"
    ERROR = "error"


class MemberStatus(enum.StrEnum):
    """Where a project stands on an image shared with it (Glance's image member status)."""

    PENDING = "pending"  # may see and use the image, does not list it by default
    ACCEPTED = "accepted"  # lists it among its images
    REJECTED = "rejected"


class ImageMemberRecord(Base):
    """A project an image is shared with: it sees the image while the image is ``shared``."""

    __tablename__ = "image_members"

    image_id: Mapped[str] = mapped_column(
        ForeignKey("images.id", ondelete="CASCADE"), primary_key=True
    )
    member_id: Mapped[str] = mapped_column(String(255), primary_key=True, index=True)
    status: Mapped[MemberStatus] = mapped_column(
        _enum(MemberStatus, "member_status"), default=MemberStatus.PENDING
    )
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )


class SnapshotRecord(Base):
    """A snapshot: a clone of its volume's file at one moment, beside it on its FlexVol
    (``snapshot-<id>``), so that volumes made from it are clones again."""

    __tablename__ = "snapshots"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    volume_id: Mapped[str] = mapped_column(String(36), index=True)
    name: Mapped[str | None] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(Text)
    status: Mapped[SnapshotStatus] = mapped_column(_enum(SnapshotStatus, "snapshot_status"))
    size_gib: Mapped[int] = mapped_column(BigInteger)
    flexvol: Mapped[str] = mapped_column(String(255))
    file: Mapped[str | None] = mapped_column(Text)
    file_format: Mapped[FileFormat] = mapped_column(
        _enum(FileFormat, "file_format"), default=FileFormat.RAW
    )
    project_id: Mapped[str | None] = mapped_column(String(64), index=True)
    user_id: Mapped[str | None] = mapped_column(String(64))
    user_metadata: Mapped[dict[str, str] | None] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )


class VolumeRecord(Base):
    __tablename__ = "volumes"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(255), index=True)
    status: Mapped[VolumeStatus] = mapped_column(_enum(VolumeStatus, "volume_status"), index=True)
    size_gib: Mapped[int] = mapped_column(BigInteger)
    image_id: Mapped[str | None] = mapped_column(String(36), index=True)
    flexvol: Mapped[str | None] = mapped_column(String(255))
    file: Mapped[str | None] = mapped_column(Text)
    file_format: Mapped[FileFormat] = mapped_column(
        _enum(FileFormat, "file_format"), default=FileFormat.RAW
    )
    provisioning: Mapped[ProvisioningRecord | None] = mapped_column(_ProvisioningJSON)
    message: Mapped[str | None] = mapped_column(Text)  # why the volume is in error
    project_id: Mapped[str | None] = mapped_column(String(64), index=True)
    user_id: Mapped[str | None] = mapped_column(String(64))
    description: Mapped[str | None] = mapped_column(Text)
    # Cinder's volume metadata; "metadata" itself is a reserved attribute in SQLAlchemy.
    user_metadata: Mapped[dict[str, str] | None] = mapped_column(JSON)
    bootable: Mapped[bool] = mapped_column(Boolean, default=False)
    # Cinder's read-only flag (admin metadata ``readonly``): attachments must be ``ro``.
    readonly: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    source_volid: Mapped[str | None] = mapped_column(String(36))
    snapshot_id: Mapped[str | None] = mapped_column(String(36))  # made from this snapshot
    volume_type_id: Mapped[str | None] = mapped_column(String(36))
    availability_zone: Mapped[str] = mapped_column(String(255), default=DEFAULT_AVAILABILITY_ZONE)
    # Cinder's volume_image_metadata: what the image said of itself when the volume was cut.
    image_metadata: Mapped[dict[str, str] | None] = mapped_column(JSON)
    # Which worker is provisioning a ``creating`` volume, until when its claim holds unless
    # renewed, and how many claims it has had (see bootvol.volumes.claims).
    claimed_by: Mapped[str | None] = mapped_column(String(255))
    lease_expires_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )


class VolumeAttachmentRecord(Base):
    """A volume attached (or being attached) to a server, as Cinder's attachments."""

    __tablename__ = "volume_attachments"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    volume_id: Mapped[str] = mapped_column(ForeignKey("volumes.id", ondelete="CASCADE"), index=True)
    server_id: Mapped[str | None] = mapped_column(String(36), index=True)  # instance_uuid
    status: Mapped[AttachStatus] = mapped_column(_enum(AttachStatus, "attach_status"))
    device: Mapped[str | None] = mapped_column(String(64))  # /dev/vdb: the mountpoint
    host: Mapped[str | None] = mapped_column(String(255))  # the compute host (attached_host)
    mode: Mapped[str] = mapped_column(String(8), default="rw")
    # Whether deleting the server deletes the volume (Nova's BDM flag, 2.79).
    delete_on_termination: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    attached_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class ProjectRecord(Base):
    """A Keystone project, with its Cinder quotas (volumes, gigabytes) and Nova's (instances,
    cores, ram)."""

    __tablename__ = "projects"
    __table_args__ = (UniqueConstraint("domain_id", "name"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    domain_id: Mapped[str] = mapped_column(String(64), default=DEFAULT_DOMAIN_ID)
    description: Mapped[str | None] = mapped_column(Text)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    quota_volumes: Mapped[int] = mapped_column(Integer, default=DEFAULT_QUOTA_VOLUMES)
    quota_gigabytes: Mapped[int] = mapped_column(Integer, default=DEFAULT_QUOTA_GIGABYTES)
    quota_snapshots: Mapped[int] = mapped_column(
        Integer, default=DEFAULT_QUOTA_SNAPSHOTS, server_default=str(DEFAULT_QUOTA_SNAPSHOTS)
    )
    quota_instances: Mapped[int] = mapped_column(Integer, default=DEFAULT_QUOTA_INSTANCES)
    quota_cores: Mapped[int] = mapped_column(Integer, default=DEFAULT_QUOTA_CORES)
    quota_ram_mib: Mapped[int] = mapped_column(Integer, default=DEFAULT_QUOTA_RAM_MIB)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class UserRecord(Base):
    __tablename__ = "users"
    __table_args__ = (UniqueConstraint("domain_id", "name"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    domain_id: Mapped[str] = mapped_column(String(64), default=DEFAULT_DOMAIN_ID)
    password_hash: Mapped[str] = mapped_column(Text)  # argon2id, with its parameters
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    default_project_id: Mapped[str | None] = mapped_column(
        ForeignKey("projects.id", ondelete="SET NULL")
    )
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class RoleAssignmentRecord(Base):
    """A user holds a role on a project."""

    __tablename__ = "role_assignments"

    user_id: Mapped[str] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    project_id: Mapped[str] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
    )
    role: Mapped[Role] = mapped_column(_enum(Role, "role"), primary_key=True)


class TokenRecord(Base):
    """An issued token. Only its SHA-256 is kept: a database dump yields no usable token."""

    __tablename__ = "tokens"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    methods: Mapped[list[str]] = mapped_column(JSON)
    audit_id: Mapped[str] = mapped_column(String(32))
    issued_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), index=True)


class ServerStatus(enum.StrEnum):
    """Nova's server statuses that bootvol uses (api-ref "Server statuses")."""

    BUILD = "BUILD"
    ACTIVE = "ACTIVE"
    SHUTOFF = "SHUTOFF"
    REBOOT = "REBOOT"
    HARD_REBOOT = "HARD_REBOOT"
    ERROR = "ERROR"


class TaskState(enum.StrEnum):
    """Nova's ``OS-EXT-STS:task_state`` values that bootvol uses."""

    BLOCK_DEVICE_MAPPING = "block_device_mapping"  # the boot volume is being made
    SPAWNING = "spawning"  # the domain is being defined and started
    POWERING_OFF = "powering-off"
    POWERING_ON = "powering-on"
    REBOOTING = "rebooting"
    REBOOTING_HARD = "rebooting_hard"
    DELETING = "deleting"


class FlavorRecord(Base):
    """A Nova flavor: what a server gets of a host."""

    __tablename__ = "flavors"

    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    vcpus: Mapped[int] = mapped_column(Integer)
    ram_mib: Mapped[int] = mapped_column(Integer)
    disk_gib: Mapped[int] = mapped_column(Integer, default=0)
    is_public: Mapped[bool] = mapped_column(Boolean, default=True)
    description: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ComputeHostRecord(Base):
    """A process that runs instances (``bootvol serve``/``worker`` with compute enabled)."""

    __tablename__ = "compute_hosts"

    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    vcpus: Mapped[int] = mapped_column(Integer)
    ram_mib: Mapped[int] = mapped_column(Integer)
    accel: Mapped[str] = mapped_column(String(16))  # kvm or tcg, as probed
    started_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    heartbeat_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ServerRecord(Base):
    """A Nova server: a libvirt domain booted from a bootvol volume."""

    __tablename__ = "servers"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(255), index=True)
    project_id: Mapped[str | None] = mapped_column(String(64), index=True)
    user_id: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[ServerStatus] = mapped_column(_enum(ServerStatus, "server_status"), index=True)
    task_state: Mapped[TaskState | None] = mapped_column(_enum(TaskState, "task_state", length=32))
    # The flavor as it was at creation (Nova embeds it in the server since 2.47): a flavor
    # deleted later leaves its servers whole.
    flavor_id: Mapped[str] = mapped_column(String(255))
    flavor_name: Mapped[str] = mapped_column(String(255))
    vcpus: Mapped[int] = mapped_column(Integer)
    ram_mib: Mapped[int] = mapped_column(Integer)
    disk_gib: Mapped[int] = mapped_column(Integer, default=0)
    image_id: Mapped[str | None] = mapped_column(String(36))
    root_volume_id: Mapped[str | None] = mapped_column(String(36))
    root_volume_size_gib: Mapped[int | None] = mapped_column(Integer)
    delete_on_termination: Mapped[bool] = mapped_column(Boolean, default=False)
    host: Mapped[str | None] = mapped_column(String(255), index=True)
    fault_code: Mapped[int | None] = mapped_column(Integer)
    fault_message: Mapped[str | None] = mapped_column(Text)
    fault_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    # Where the time went: the volume's provisioning path, domain start, first console line.
    build: Mapped[BuildRecord | None] = mapped_column(_BuildJSON)
    user_metadata: Mapped[dict[str, str] | None] = mapped_column(JSON)
    launched_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )
