"""SQLAlchemy models: the image and volume records."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, Enum, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Base(DeclarativeBase):
    pass


class ImageStatus(enum.StrEnum):
    """Glance's image statuses that bootvol uses."""

    QUEUED = "queued"  # record exists, no bytes yet
    SAVING = "saving"  # upload in progress
    ACTIVE = "active"  # bytes stored (or a remote location known) and usable
    KILLED = "killed"  # upload failed; the record stays to say why


class VolumeStatus(enum.StrEnum):
    CREATING = "creating"
    DOWNLOADING = "downloading"
    AVAILABLE = "available"
    EXTENDING = "extending"
    DELETING = "deleting"
    ERROR = "error"


def _enum(kind: type[enum.StrEnum], name: str) -> Enum:
    # Store the values ("active"), not the member names, and without a native DB enum type
    # so that adding a status is a code change, not a schema migration.
    return Enum(
        kind,
        name=name,
        native_enum=False,
        length=16,
        values_callable=lambda e: [m.value for m in e],
    )


class ImageRecord(Base):
    __tablename__ = "images"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(255), index=True)
    disk_format: Mapped[str] = mapped_column(String(16))
    container_format: Mapped[str] = mapped_column(String(16), default="bare")
    status: Mapped[ImageStatus] = mapped_column(_enum(ImageStatus, "image_status"))
    size: Mapped[int | None] = mapped_column(BigInteger)
    virtual_size: Mapped[int | None] = mapped_column(BigInteger)
    checksum: Mapped[str | None] = mapped_column(String(32))  # md5, as Glance's `checksum`
    os_hash_algo: Mapped[str | None] = mapped_column(String(16))
    os_hash_value: Mapped[str | None] = mapped_column(String(128))
    # A file path inside a FlexVol (uploaded) or an http(s):// URL (remote, downloaded on use).
    location: Mapped[str | None] = mapped_column(Text)
    message: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )


class VolumeRecord(Base):
    __tablename__ = "volumes"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(255), index=True)
    status: Mapped[VolumeStatus] = mapped_column(_enum(VolumeStatus, "volume_status"))
    size_gib: Mapped[int] = mapped_column(BigInteger)
    image_id: Mapped[str | None] = mapped_column(String(36), index=True)
    flexvol: Mapped[str | None] = mapped_column(String(255))
    file: Mapped[str | None] = mapped_column(Text)
    file_format: Mapped[str] = mapped_column(String(16), default="raw")
    provisioning: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    message: Mapped[str | None] = mapped_column(Text)  # why the volume is in error
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )
