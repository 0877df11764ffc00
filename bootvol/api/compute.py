"""Nova v2.1 routes under /compute: discovery, flavors, servers, server actions, limits.

A subset, served at microversions 2.1–2.79 (what python-openstackclient and openstacksdk
negotiate; ``networks: "none"`` needs 2.37): servers boot from a volume (a new one from an
image through bootvol's flowchart, or an existing one) and have no network (``"auto"`` is
taken as none). Server bodies carry the 2.79 fields (the flavor embedded since 2.47);
clients of older versions ignore what they do not know.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from bootvol.api.deps import AppDep, BaseUrl, CallerDep
from bootvol.api.formats import cinder_time
from bootvol.api.quota_sets import check_may_change, check_may_read
from bootvol.caller import Caller
from bootvol.compute.flavors import FlavorCreate
from bootvol.compute.quota import (
    DEFAULT_LIMITS,
    ComputeLimits,
    ComputeLimitsUpdate,
    ProjectComputeQuota,
)
from bootvol.compute.service import (
    BootSource,
    BootVolume,
    ServerCreate,
    ServerQuery,
    vm_state,
)
from bootvol.db.models import (
    FlavorRecord,
    ServerRecord,
    ServerStatus,
    TaskState,
    VolumeAttachmentRecord,
)
from bootvol.errors import InvalidRequest
from bootvol.runtime import Bootvol

router = APIRouter(prefix="/compute", tags=["compute"])

_INT32 = 2**31 - 1
MIN_VERSION = "2.1"
MAX_VERSION = "2.79"
_UPDATED = "2013-07-23T11:33:21Z"  # Nova's own "updated" of v2.1
# Nova's power_state codes (nova.compute.power_state).
_POWER_STATE = {
    ServerStatus.BUILD: 0,
    ServerStatus.ACTIVE: 1,
    ServerStatus.REBOOT: 1,
    ServerStatus.HARD_REBOOT: 1,
    ServerStatus.SHUTOFF: 4,
    ServerStatus.ERROR: 0,
}


def requested_version(headers: Mapping[str, str]) -> str:
    """The microversion a request asks for: ``OpenStack-API-Version: compute 2.x`` or the
    older ``X-OpenStack-Nova-API-Version``; ``latest`` is the maximum, none is 2.1."""
    asked = None
    for part in headers.get("openstack-api-version", "").split(","):
        service, _, value = part.strip().partition(" ")
        if service.lower() == "compute":
            asked = value.strip()
    asked = asked or headers.get("x-openstack-nova-api-version") or MIN_VERSION
    return MAX_VERSION if asked.lower() == "latest" else asked


def _version(base: str) -> dict[str, Any]:
    return {
        "id": "v2.1",
        "status": "CURRENT",
        "version": MAX_VERSION,
        "min_version": MIN_VERSION,
        "updated": _UPDATED,
        "links": [{"rel": "self", "href": f"{base}/compute/v2.1/"}],
        "media-types": [
            {
                "base": "application/json",
                "type": "application/vnd.openstack.compute+json;version=2.1",
            }
        ],
    }


@router.get("", include_in_schema=False)
@router.get("/")
def versions(base: BaseUrl) -> dict[str, Any]:
    """Version discovery: v2.1 with its microversion range."""
    return {"versions": [_version(base)]}


@router.get("/v2.1", include_in_schema=False)
@router.get("/v2.1/")
def version(base: BaseUrl) -> dict[str, Any]:
    return {"version": _version(base)}


# flavors -------------------------------------------------------------------------------------
class FlavorFields(BaseModel):
    name: str = Field(min_length=1, max_length=255)
    # Nova's bounds: the database's 32-bit integers.
    ram: int = Field(ge=1, le=_INT32)
    vcpus: int = Field(ge=1, le=_INT32)
    disk: int = Field(0, ge=0, le=_INT32)
    id: str | None = Field(None, min_length=1, max_length=255)
    is_public: bool = Field(True, alias="os-flavor-access:is_public")
    description: str | None = None

    model_config = ConfigDict(populate_by_name=True, extra="ignore")


class FlavorCreateBody(BaseModel):
    flavor: FlavorFields


def _flavor(record: FlavorRecord, base: str, *, detail: bool) -> dict[str, Any]:
    links = [{"rel": "self", "href": f"{base}/compute/v2.1/flavors/{record.id}"}]
    body: dict[str, Any] = {
        "id": record.id,
        "name": record.name,
        "links": links,
        "description": record.description,
    }
    if detail:
        body.update(
            {
                "ram": record.ram_mib,
                "vcpus": record.vcpus,
                "disk": record.disk_gib,
                "swap": 0,
                "OS-FLV-EXT-DATA:ephemeral": 0,
                "OS-FLV-DISABLED:disabled": False,
                "rxtx_factor": 1.0,
                "os-flavor-access:is_public": record.is_public,
                "extra_specs": {},
            }
        )
    return body


@router.get("/v2.1/flavors")
def list_flavors(bootvol: AppDep, caller: CallerDep, base: BaseUrl) -> dict[str, Any]:
    return {
        "flavors": [_flavor(f, base, detail=False) for f in bootvol.flavors.list(caller=caller)]
    }


@router.get("/v2.1/flavors/detail")
def list_flavors_detail(bootvol: AppDep, caller: CallerDep, base: BaseUrl) -> dict[str, Any]:
    return {"flavors": [_flavor(f, base, detail=True) for f in bootvol.flavors.list(caller=caller)]}


@router.get("/v2.1/flavors/{flavor_id}")
def show_flavor(
    flavor_id: str, bootvol: AppDep, caller: CallerDep, base: BaseUrl
) -> dict[str, Any]:
    return {"flavor": _flavor(bootvol.flavors.get_by_id(flavor_id), base, detail=True)}


@router.post("/v2.1/flavors")
def create_flavor(
    body: FlavorCreateBody, bootvol: AppDep, caller: CallerDep, base: BaseUrl
) -> dict[str, Any]:
    """Admin only (Nova's default policy)."""
    fields = body.flavor
    record = bootvol.flavors.create(
        FlavorCreate(
            name=fields.name,
            vcpus=fields.vcpus,
            ram_mib=fields.ram,
            disk_gib=fields.disk,
            id=fields.id,
            is_public=fields.is_public,
            description=fields.description,
        ),
        caller=caller,
    )
    return {"flavor": _flavor(record, base, detail=True)}


@router.delete("/v2.1/flavors/{flavor_id}", status_code=202)
def delete_flavor(flavor_id: str, bootvol: AppDep, caller: CallerDep) -> Response:
    bootvol.flavors.delete(flavor_id, caller=caller)
    return Response(status_code=202)


# servers -------------------------------------------------------------------------------------
class BlockDeviceMapping(BaseModel):
    model_config = ConfigDict(extra="ignore")

    boot_index: int | str | None = None
    uuid: str | None = None
    source_type: Literal["image", "volume", "snapshot", "blank"] = "volume"
    destination_type: Literal["volume", "local"] = "volume"
    volume_size: int | None = Field(None, ge=1, le=_INT32)
    delete_on_termination: bool = False


class ServerFields(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    name: str = Field(min_length=1, max_length=255)
    flavor_ref: str = Field(alias="flavorRef")
    image_ref: str | None = Field(None, alias="imageRef")
    block_device_mapping_v2: list[BlockDeviceMapping] | None = None
    networks: Literal["none", "auto"] | list[dict[str, Any]] | None = None
    metadata: dict[str, str] | None = None


class ServerCreateBody(BaseModel):
    server: ServerFields


def _boot_volume(fields: ServerFields) -> BootVolume | None:
    mappings = fields.block_device_mapping_v2 or []
    boot = [m for m in mappings if str(m.boot_index) == "0"]
    if len(mappings) > len(boot) or len(boot) > 1:
        raise InvalidRequest(
            "Block Device Mapping is Invalid: bootvol boots from one volume (boot_index 0); "
            "attach data volumes once the server is ACTIVE"
        )
    if not boot:
        return None
    mapping = boot[0]
    if mapping.source_type == "image" and mapping.destination_type == "local":
        # What `openstack server create --image` sends beside imageRef: the image as the
        # root disk. bootvol's root disk is a volume made for the server (imageRef alone).
        return None
    if mapping.destination_type != "volume" or mapping.source_type not in ("image", "volume"):
        raise InvalidRequest(
            "Block Device Mapping is Invalid: the boot device must be a volume, from an image "
            "or an existing volume"
        )
    if not mapping.uuid:
        raise InvalidRequest("Block Device Mapping is Invalid: the boot device needs a uuid")
    return BootVolume(
        source=BootSource(mapping.source_type),
        uuid=mapping.uuid,
        volume_size_gib=mapping.volume_size,
        delete_on_termination=mapping.delete_on_termination,
    )


class _ServerView:
    def __init__(
        self, *, base: str, caller: Caller, attachments: Iterable[VolumeAttachmentRecord] = ()
    ) -> None:
        self._base = base
        self._caller = caller
        self._volumes: dict[str, list[VolumeAttachmentRecord]] = {}
        for attachment in attachments:
            self._volumes.setdefault(attachment.server_id or "", []).append(attachment)

    @classmethod
    def of(
        cls, servers: list[ServerRecord], bootvol: Bootvol, *, base: str, caller: Caller
    ) -> _ServerView:
        """A view that knows the listed servers' attached volumes (one query for all)."""
        attachments = bootvol.volumes.attachments.of_servers(s.id for s in servers)
        return cls(base=base, caller=caller, attachments=attachments)

    def links(self, record: ServerRecord) -> list[dict[str, str]]:
        return [{"rel": "self", "href": f"{self._base}/compute/v2.1/servers/{record.id}"}]

    def summary(self, record: ServerRecord) -> dict[str, Any]:
        return {"id": record.id, "name": record.name, "links": self.links(record)}

    def detail(self, record: ServerRecord) -> dict[str, Any]:
        image: Any = ""
        if record.image_id and record.root_volume_id is None:
            image = {"id": record.image_id, "links": []}
        attached = [
            {"id": a.volume_id, "delete_on_termination": a.delete_on_termination}
            for a in self._volumes.get(record.id, [])
        ]
        body: dict[str, Any] = {
            **self.summary(record),
            "status": str(record.status),
            "tenant_id": record.project_id,
            "user_id": record.user_id,
            "metadata": record.user_metadata or {},
            "hostId": "",
            "image": image,
            "flavor": {
                "original_name": record.flavor_name,
                "vcpus": record.vcpus,
                "ram": record.ram_mib,
                "disk": record.disk_gib,
                "ephemeral": 0,
                "swap": 0,
                "extra_specs": {},
            },
            "created": cinder_time(record.created_at),
            "updated": cinder_time(record.updated_at),
            "addresses": {},
            "accessIPv4": "",
            "accessIPv6": "",
            "OS-DCF:diskConfig": "MANUAL",
            "progress": 0,
            "OS-EXT-AZ:availability_zone": "nova",
            "config_drive": "",
            "key_name": None,
            "OS-SRV-USG:launched_at": cinder_time(record.launched_at)
            if record.launched_at
            else None,
            "OS-SRV-USG:terminated_at": None,
            "OS-EXT-STS:task_state": str(record.task_state) if record.task_state else None,
            "OS-EXT-STS:vm_state": vm_state(record),
            "OS-EXT-STS:power_state": _POWER_STATE[record.status],
            "os-extended-volumes:volumes_attached": attached,
            "security_groups": [],
            "locked": False,
            "locked_reason": None,
            "description": None,
            "tags": [],
            "trusted_image_certificates": None,
            "server_groups": [],
        }
        if record.build:
            body["metadata"] = {**body["metadata"], **record.build.as_metadata()}
        if self._caller.sees_everything:
            body["OS-EXT-SRV-ATTR:host"] = record.host
            body["OS-EXT-SRV-ATTR:hypervisor_hostname"] = record.host
            body["OS-EXT-SRV-ATTR:instance_name"] = f"bootvol-{record.id}"
            body["host_status"] = "UP" if record.host else ""
        if record.status == ServerStatus.ERROR and record.fault_message:
            body["fault"] = {
                "code": record.fault_code or 500,
                "message": record.fault_message,
                "created": cinder_time(record.fault_at) if record.fault_at else None,
            }
        return body


@router.post("/v2.1/servers", status_code=202)
def create_server(
    body: ServerCreateBody, bootvol: AppDep, caller: CallerDep, base: BaseUrl
) -> dict[str, Any]:
    """Accept a server (``BUILD``); the compute host it is scheduled to builds it."""
    fields = body.server
    if isinstance(fields.networks, list) and fields.networks:
        raise InvalidRequest("bootvol servers have no network: use networks 'none'")
    boot = _boot_volume(fields)
    image = fields.image_ref.rsplit("/", 1)[-1] if fields.image_ref else None
    if boot is None and image is None:
        local = [m for m in fields.block_device_mapping_v2 or [] if m.source_type == "image"]
        image = local[0].uuid if local else None
    record = bootvol.servers.accept(
        ServerCreate(
            name=fields.name,
            flavor=fields.flavor_ref.rsplit("/", 1)[-1],
            image=image if boot is None else None,
            boot_volume=boot,
            metadata=fields.metadata or {},
        ),
        caller=caller,
    )
    view = _ServerView(base=base, caller=caller)
    return {
        "server": {
            **view.summary(record),
            "OS-DCF:diskConfig": "MANUAL",
            "security_groups": [{"name": "default"}],
            "adminPass": "",
        }
    }


ListFilter = Annotated[str | None, Query()]


def server_query(
    name: ListFilter = None,
    status: ListFilter = None,
    host: ListFilter = None,
    all_tenants: ListFilter = None,
    limit: Annotated[int | None, Query(ge=0)] = None,
    marker: ListFilter = None,
) -> ServerQuery:
    """Nova's list filters that bootvol honours (the others are ignored, as Nova ignores
    unknown ones for non-admins)."""
    try:
        wanted = ServerStatus(status.upper()) if status else None
    except ValueError:
        raise InvalidRequest(f"Invalid status value: {status}") from None
    every = all_tenants is not None and all_tenants.lower() not in ("0", "false", "off")
    return ServerQuery(
        name=name, status=wanted, host=host, all_projects=every, limit=limit, marker=marker
    )


ServerQueryDep = Annotated[ServerQuery, Depends(server_query)]


@router.get("/v2.1/servers")
def list_servers(
    query: ServerQueryDep, bootvol: AppDep, caller: CallerDep, base: BaseUrl
) -> dict[str, Any]:
    view = _ServerView(base=base, caller=caller)
    return {"servers": [view.summary(s) for s in bootvol.servers.query(query, caller=caller)]}


@router.get("/v2.1/servers/detail")
def list_servers_detail(
    query: ServerQueryDep, bootvol: AppDep, caller: CallerDep, base: BaseUrl
) -> dict[str, Any]:
    servers = bootvol.servers.query(query, caller=caller)
    view = _ServerView.of(servers, bootvol, base=base, caller=caller)
    return {"servers": [view.detail(s) for s in servers]}


@router.get("/v2.1/servers/{server_id}")
def show_server(
    server_id: str, bootvol: AppDep, caller: CallerDep, base: BaseUrl
) -> dict[str, Any]:
    record = bootvol.servers.get(server_id, caller=caller)
    return {"server": _ServerView.of([record], bootvol, base=base, caller=caller).detail(record)}


@router.delete("/v2.1/servers/{server_id}", status_code=204)
def delete_server(server_id: str, bootvol: AppDep, caller: CallerDep) -> Response:
    bootvol.servers.request_delete(server_id, caller=caller)
    return Response(status_code=204)


def _lines(body: dict[str, Any]) -> int | None:
    """os-getConsoleOutput's ``length``: the last lines to return; none, or -1, for all."""
    options = body["os-getConsoleOutput"] or {}
    length = options.get("length") if isinstance(options, dict) else None
    if length in (None, "", -1, "-1"):
        return None
    try:
        lines = int(length)
    except (TypeError, ValueError):
        raise InvalidRequest(f"Invalid length {length!r}: a number of lines, or -1") from None
    if lines < 0:
        raise InvalidRequest(f"Invalid length {lines}: a number of lines, or -1")
    return lines


@router.post("/v2.1/servers/{server_id}/action")
def server_action(
    server_id: str, body: dict[str, Any], bootvol: AppDep, caller: CallerDep
) -> Response:
    """os-start, os-stop, reboot (SOFT, HARD) and os-getConsoleOutput."""
    servers = bootvol.servers
    if "os-getConsoleOutput" in body:
        return JSONResponse(
            {"output": servers.console_output(server_id, caller=caller, lines=_lines(body))}
        )
    if "os-stop" in body:
        servers.begin_task(
            server_id, task=TaskState.POWERING_OFF, allowed=(ServerStatus.ACTIVE,), caller=caller
        )
    elif "os-start" in body:
        servers.begin_task(
            server_id, task=TaskState.POWERING_ON, allowed=(ServerStatus.SHUTOFF,), caller=caller
        )
    elif "reboot" in body:
        options = body["reboot"]
        if not isinstance(options, dict):
            raise InvalidRequest('reboot takes an object: {"type": "SOFT" or "HARD"}')
        kind = str(options.get("type", "SOFT")).upper()
        if kind not in ("SOFT", "HARD"):
            raise InvalidRequest(f"Invalid reboot type {kind}: SOFT or HARD")
        task = TaskState.REBOOTING_HARD if kind == "HARD" else TaskState.REBOOTING
        allowed = (
            (ServerStatus.ACTIVE, ServerStatus.SHUTOFF)
            if kind == "HARD"
            else (ServerStatus.ACTIVE,)
        )
        servers.begin_task(server_id, task=task, allowed=allowed, caller=caller)
    else:
        raise InvalidRequest(f"There is no such action: {', '.join(body) or 'none'}")
    servers.wake_host(servers.get(server_id, caller=caller))
    return Response(status_code=202)


# limits and quotas ---------------------------------------------------------------------------
# Nova's other quotas ([quota] defaults in nova.conf): shown, as Nova shows them, but not kept
# per project nor enforced; bootvol keeps and enforces instances, cores and ram.
_UNENFORCED_QUOTAS = {
    "key_pairs": 100,
    "metadata_items": 128,
    "server_groups": 10,
    "server_group_members": 10,
}
# Shown before 2.57, which dropped file injection (personality).
_INJECTED_FILE_QUOTAS = {
    "injected_files": 5,
    "injected_file_content_bytes": 10240,
    "injected_file_path_bytes": 255,
}
# Shown before 2.36, which dropped the proxies to the network service.
_NETWORK_QUOTAS = {
    "fixed_ips": -1,
    "floating_ips": 10,
    "security_groups": 10,
    "security_group_rules": 20,
}
_QUOTA_RULE = "os_compute_api:os-quota-sets"


def compute_version(request: Request) -> tuple[int, int]:
    """The microversion a compute request asks for, as (2, minor) to compare."""
    asked = requested_version(request.headers)
    major, _, minor = asked.partition(".")
    if not (major.isdigit() and minor.isdigit()):
        raise InvalidRequest(f"Invalid microversion {asked!r}: like 2.57")
    return int(major), int(minor)


ComputeVersion = Annotated[tuple[int, int], Depends(compute_version)]


def _quota_limits(limits: ComputeLimits, version: tuple[int, int]) -> dict[str, int]:
    """Every quota Nova shows at ``version``, by name, with its limit."""
    values = {
        "instances": limits.instances,
        "cores": limits.cores,
        "ram": limits.ram_mib,
        **_UNENFORCED_QUOTAS,
    }
    if version < (2, 57):
        values.update(_INJECTED_FILE_QUOTAS)
    if version < (2, 36):
        values.update(_NETWORK_QUOTAS)
    return values


def _quota_detail(quota: ProjectComputeQuota, version: tuple[int, int]) -> dict[str, Any]:
    """Nova's detail: each quota as its limit, what is in use and what is reserved (nothing:
    usage is counted, not reserved, since Nova's Pike)."""
    used = {
        "instances": quota.usage.instances,
        "cores": quota.usage.cores,
        "ram": quota.usage.ram_mib,
    }
    return {
        name: {"limit": limit, "in_use": used.get(name, 0), "reserved": 0}
        for name, limit in _quota_limits(quota.limits, version).items()
    }


@router.get("/v2.1/os-quota-sets/{project_id}")
def show_quota_set(
    project_id: str, bootvol: AppDep, caller: CallerDep, version: ComputeVersion
) -> dict[str, Any]:
    """The project's quotas (its own members and admins)."""
    check_may_read(caller, project_id, rule=f"{_QUOTA_RULE}:show")
    quota = bootvol.servers.quota.of(project_id)
    return {"quota_set": {"id": project_id, **_quota_limits(quota.limits, version)}}


@router.get("/v2.1/os-quota-sets/{project_id}/detail")
def show_quota_set_detail(
    project_id: str, bootvol: AppDep, caller: CallerDep, version: ComputeVersion
) -> dict[str, Any]:
    check_may_read(caller, project_id, rule=f"{_QUOTA_RULE}:detail")
    quota = bootvol.servers.quota.of(project_id)
    return {"quota_set": {"id": project_id, **_quota_detail(quota, version)}}


@router.get("/v2.1/os-quota-sets/{project_id}/defaults")
def show_quota_set_defaults(
    project_id: str, caller: CallerDep, version: ComputeVersion
) -> dict[str, Any]:
    """What a new project gets (any caller with a valid token may ask, as in Nova)."""
    del caller  # asked for its token check only
    return {"quota_set": {"id": project_id, **_quota_limits(DEFAULT_LIMITS, version)}}


class ComputeQuotaSetFields(BaseModel):
    """Nova's quota-set update; every value -1 (unlimited) or a count."""

    model_config = ConfigDict(extra="forbid")

    instances: int | None = Field(None, ge=-1, le=_INT32)
    cores: int | None = Field(None, ge=-1, le=_INT32)
    ram: int | None = Field(None, ge=-1, le=_INT32)
    key_pairs: int | None = Field(None, ge=-1, le=_INT32)
    metadata_items: int | None = Field(None, ge=-1, le=_INT32)
    server_groups: int | None = Field(None, ge=-1, le=_INT32)
    server_group_members: int | None = Field(None, ge=-1, le=_INT32)
    injected_files: int | None = Field(None, ge=-1, le=_INT32)
    injected_file_content_bytes: int | None = Field(None, ge=-1, le=_INT32)
    injected_file_path_bytes: int | None = Field(None, ge=-1, le=_INT32)
    force: bool = False


class ComputeQuotaSetBody(BaseModel):
    quota_set: ComputeQuotaSetFields


def _refuse_unkept_quotas(fields: ComputeQuotaSetFields, version: tuple[int, int]) -> None:
    """Nova keeps every quota it shows; bootvol only instances, cores and ram. Setting
    another to the value every project has is harmless; any other value is refused rather
    than silently dropped."""
    given = fields.model_dump(exclude_none=True)
    if version >= (2, 57) and given.keys() & _INJECTED_FILE_QUOTAS.keys():
        names = ", ".join(sorted(given.keys() & _INJECTED_FILE_QUOTAS.keys()))
        raise InvalidRequest(f"Invalid input for field/attribute quota_set: {names} (2.57+)")
    for name, fixed in {**_UNENFORCED_QUOTAS, **_INJECTED_FILE_QUOTAS}.items():
        if name in given and given[name] != fixed:
            raise InvalidRequest(
                f"bootvol keeps no {name} quota per project: it is {fixed} for every project; "
                "it sets instances, cores and ram"
            )


@router.put("/v2.1/os-quota-sets/{project_id}")
def update_quota_set(
    project_id: str,
    body: ComputeQuotaSetBody,
    bootvol: AppDep,
    caller: CallerDep,
    version: ComputeVersion,
) -> dict[str, Any]:
    """Set the project's instances, cores and ram quotas (admins, as Nova's default
    policy). Below what is in use only with ``force``. Nova's answer has no ``id``."""
    check_may_change(caller, rule=f"{_QUOTA_RULE}:update")
    fields = body.quota_set
    _refuse_unkept_quotas(fields, version)
    quota = bootvol.servers.quota.set_limits(
        project_id,
        ComputeLimitsUpdate(
            instances=fields.instances, cores=fields.cores, ram_mib=fields.ram, force=fields.force
        ),
    )
    return {"quota_set": _quota_limits(quota.limits, version)}


@router.get("/v2.1/limits")
def limits(
    bootvol: AppDep,
    caller: CallerDep,
    version: ComputeVersion,
    tenant_id: Annotated[str | None, Query()] = None,
    reserved: Annotated[str | None, Query()] = None,
) -> dict[str, Any]:
    """The project's absolute limits and what it uses (another project's for admins, with
    ``tenant_id``). ``reserved`` changes nothing: usage is counted, never reserved."""
    del reserved
    project_id = caller.project_id or ""  # API tokens are always scoped to a project
    # openstacksdk (4.x) sends the literal "tenant_id=None" when no project is named (what
    # `openstack limits show` does); no project has that id, so it means the caller's own.
    if tenant_id is not None and tenant_id != "None":
        check_may_read(caller, tenant_id, rule="os_compute_api:limits:other_project")
        project_id = tenant_id
    quota = bootvol.servers.quota.of(project_id)
    quotas = _quota_limits(quota.limits, version)
    absolute = {
        "maxTotalInstances": quotas["instances"],
        "maxTotalCores": quotas["cores"],
        "maxTotalRAMSize": quotas["ram"],
        "totalInstancesUsed": quota.usage.instances,
        "totalCoresUsed": quota.usage.cores,
        "totalRAMUsed": quota.usage.ram_mib,
        "maxServerMeta": quotas["metadata_items"],
        "maxTotalKeypairs": quotas["key_pairs"],
        "maxServerGroups": quotas["server_groups"],
        "maxServerGroupMembers": quotas["server_group_members"],
        "totalServerGroupsUsed": 0,
    }
    # Nova's limits drop what each microversion removed: the image metadata proxy (2.39),
    # personality (2.57), the network proxies (2.36).
    if version < (2, 39):
        absolute["maxImageMeta"] = quotas["metadata_items"]
    if version < (2, 57):
        absolute["maxPersonality"] = quotas["injected_files"]
        absolute["maxPersonalitySize"] = quotas["injected_file_content_bytes"]
    if version < (2, 36):
        absolute.update(
            maxSecurityGroups=quotas["security_groups"],
            maxSecurityGroupRules=quotas["security_group_rules"],
            maxTotalFloatingIps=quotas["floating_ips"],
            totalSecurityGroupsUsed=0,
            totalFloatingIpsUsed=0,
        )
    return {"limits": {"rate": [], "absolute": absolute}}
