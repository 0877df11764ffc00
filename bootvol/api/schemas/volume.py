"""Cinder v3 bodies: volume create/update/actions, the volume in its views, quota sets.

A volume's view depends on who asks and with which microversion (Cinder's view builders):
the 3.0 fields always; ``migration_status`` and the ``os-vol-host-attr``/``os-vol-mig-
status-attr`` extensions for admins; later fields only from their microversion. Optional
fields are left *unset* when they do not apply, and routes drop unset fields, so a 3.0
answer carries exactly the 3.0 fields.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from bootvol.api.schemas.common import Link


class VolumeCreateFields(BaseModel):
    """Cinder's create body (``volume``); unknown keys are ignored, as before 3.53."""

    model_config = ConfigDict(populate_by_name=True)

    size: int | None = Field(None, ge=1, description="GiB; optional with source_volid")
    name: str | None = Field(None, max_length=255)
    description: str | None = Field(None, max_length=255)
    image_ref: str | None = Field(None, alias="imageRef")
    source_volid: str | None = None
    snapshot_id: str | None = None
    backup_id: str | None = None
    volume_type: str | None = None
    availability_zone: str | None = None
    metadata: dict[str, str] | None = None
    multiattach: bool | None = None
    consistencygroup_id: str | None = None
    group_id: str | None = None

    @field_validator("size", mode="before")
    @classmethod
    def _size_from_string(cls, value: Any) -> Any:
        # Cinder's schema takes the size as an integer or a string of digits.
        if isinstance(value, str) and value.isdigit():
            return int(value)
        return value


class VolumeCreateBody(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    volume: VolumeCreateFields
    scheduler_hints: dict[str, Any] | None = Field(None, alias="OS-SCH-HNT:scheduler_hints")


class VolumeUpdateFields(BaseModel):
    name: str | None = Field(None, max_length=255)
    description: str | None = Field(None, max_length=255)
    metadata: dict[str, str] | None = None


class VolumeUpdateBody(BaseModel):
    volume: VolumeUpdateFields


class MetadataBody(BaseModel):
    metadata: dict[str, str]


class MetaBody(BaseModel):
    """One metadata item (``/metadata/{key}``)."""

    meta: dict[str, str]


class NewSize(BaseModel):
    new_size: int = Field(ge=1)

    @field_validator("new_size", mode="before")
    @classmethod
    def _size_from_string(cls, value: Any) -> Any:
        if isinstance(value, str) and value.isdigit():
            return int(value)
        return value


class AttachAction(BaseModel):
    """``os-attach``: who attached the volume, where (Cinder's attach parameters)."""

    model_config = ConfigDict(extra="ignore")

    instance_uuid: str | None = None
    mountpoint: str | None = None
    host_name: str | None = None
    mode: str = "rw"


class DetachAction(BaseModel):
    model_config = ConfigDict(extra="ignore")

    attachment_id: str | None = None


class BootableAction(BaseModel):
    bootable: bool


class ReadonlyAction(BaseModel):
    readonly: bool


class UploadImageAction(BaseModel):
    """``os-volume_upload_image`` (``openstack image create --volume``)."""

    model_config = ConfigDict(extra="ignore")

    image_name: str
    disk_format: str = "raw"
    container_format: str = "bare"
    force: bool = False
    visibility: str | None = None
    protected: bool = False

    @field_validator("force", "protected", mode="before")
    @classmethod
    def _cinder_boolean(cls, value: Any) -> Any:
        if isinstance(value, str):
            return value.strip().lower() in ("1", "t", "true", "on", "y", "yes")
        return value


class ResetStatusAction(BaseModel):
    """``os-reset_status``: Cinder takes ``attach_status`` and ``migration_status`` too;
    bootvol keeps attachments in their own records, and migrates nothing."""

    model_config = ConfigDict(extra="ignore")

    status: str | None = None


class VolumeActionBody(BaseModel):
    """One action per request. Those that take no argument are sent as ``null``: which
    one was asked for is which field is set (``model_fields_set``)."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    os_extend: NewSize | None = Field(None, alias="os-extend")
    os_reserve: None = Field(None, alias="os-reserve")
    os_unreserve: None = Field(None, alias="os-unreserve")
    os_attach: AttachAction | None = Field(None, alias="os-attach")
    os_begin_detaching: None = Field(None, alias="os-begin_detaching")
    os_roll_detaching: None = Field(None, alias="os-roll_detaching")
    os_detach: DetachAction | None = Field(None, alias="os-detach")
    os_set_bootable: BootableAction | None = Field(None, alias="os-set_bootable")
    os_update_readonly_flag: ReadonlyAction | None = Field(None, alias="os-update_readonly_flag")
    os_reset_status: ResetStatusAction | None = Field(None, alias="os-reset_status")
    os_force_delete: dict[str, Any] | None = Field(None, alias="os-force_delete")
    os_volume_upload_image: UploadImageAction | None = Field(None, alias="os-volume_upload_image")


class VolumeListParams(BaseModel):
    """Query parameters of the volume lists (api-ref "List accessible volumes")."""

    limit: int | None = Field(None, ge=0)
    marker: str | None = None
    sort: str | None = Field(None, description="key[:asc|desc],… (not with sort_key)")
    sort_key: str | None = None
    sort_dir: str | None = None
    name: str | None = None
    status: str | None = None
    metadata: str | None = Field(None, description="A dict literal: {'key': 'value'}")
    bootable: bool | None = None
    all_tenants: bool = Field(False, description="Admins: every project's volumes")
    project_id: str | None = Field(None, description="Admins, with all_tenants: one project")
    with_count: bool = Field(False, description="3.45: add the total count")


class VolumeSummary(BaseModel):
    id: str
    name: str | None
    links: list[Link]


class VolumePublic(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    # 3.0 (cinder.api.v2.views.volumes.ViewBuilder.detail)
    id: str
    status: str
    size: int
    availability_zone: str
    created_at: str | None
    updated_at: str | None
    name: str | None
    description: str | None
    volume_type: str | None
    snapshot_id: str | None
    source_volid: str | None
    metadata: dict[str, str] = Field(description="Includes bootvol's provisioning record")
    links: list[Link]
    user_id: str | None
    bootable: str = Field(description='"true" or "false", a string as Cinder has it')
    encrypted: bool
    replication_status: str | None
    consistencygroup_id: str | None
    multiattach: bool
    attachments: list[dict[str, Any]]
    migration_status: str | None = Field(None, description="Admins only")
    # extensions on show and detail
    tenant_id: str | None = Field(None, alias="os-vol-tenant-attr:tenant_id")
    host: str | None = Field(
        None, alias="os-vol-host-attr:host", description="Admins only: host@backend#FlexVol"
    )
    migstat: str | None = Field(
        None, alias="os-vol-mig-status-attr:migstat", description="Admins only"
    )
    name_id: str | None = Field(
        None, alias="os-vol-mig-status-attr:name_id", description="Admins only"
    )
    volume_image_metadata: dict[str, str] | None = Field(
        None, description="What the image said of itself, for volumes made from one"
    )
    # later microversions
    group_id: str | None = Field(None, description="3.13")
    provider_id: str | None = Field(None, description="3.21, admins only")
    service_uuid: str | None = Field(None, description="3.48")
    shared_targets: bool | None = Field(None, description="3.48")


class VolumeResponse(BaseModel):
    volume: VolumePublic


class VolumeSummaryList(BaseModel):
    volumes: list[VolumeSummary]
    volumes_links: list[Link] | None = Field(None, description="A next link when more follow")
    count: int | None = Field(None, description="3.45, with with_count=true")


class VolumeDetailList(BaseModel):
    volumes: list[VolumePublic]
    volumes_links: list[Link] | None = Field(None, description="A next link when more follow")
    count: int | None = Field(None, description="3.45, with with_count=true")


class QuotaUsage(BaseModel):
    limit: int
    in_use: int
    reserved: int = 0
    allocated: int = 0


class QuotaSet(BaseModel):
    """Cinder's quota set; bootvol enforces ``volumes`` and ``gigabytes``."""

    id: str
    volumes: int | QuotaUsage
    gigabytes: int | QuotaUsage
    per_volume_gigabytes: int | QuotaUsage
    snapshots: int | QuotaUsage
    backups: int | QuotaUsage
    backup_gigabytes: int | QuotaUsage
    groups: int | QuotaUsage


class QuotaSetResponse(BaseModel):
    quota_set: QuotaSet


class QuotaSetUpdate(BaseModel):
    model_config = ConfigDict(extra="allow")  # other keys are refused by name

    volumes: int | None = Field(None, ge=-1)
    snapshots: int | None = Field(None, ge=-1)
    gigabytes: int | None = Field(None, ge=-1)


class QuotaSetUpdateBody(BaseModel):
    quota_set: QuotaSetUpdate
