"""The TOML configuration file → typed, validated settings.

Where the file comes from, first match wins: ``--config FILE``, ``$BOOTVOL_CONFIG``, then
``<data-dir>/bootvol.toml``, which is written with the embedded default (one cluster, one SVM,
FlexVols ``images``, ``vol_a`` and ``vol_b`` as folders of the data folder) on first use.

A file that does not parse or does not validate is refused with its path, the line of the
offending key when it can be found, and the reason.
"""

from __future__ import annotations

import enum
import os
import re
import tomllib
from pathlib import Path
from typing import Any, Self
from urllib.parse import urlparse

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from bootvol.errors import ConfigError
from bootvol.storage.layout import BLOCK_BYTES, DEFAULT_MIN_HOLE, EntryLayout
from bootvol.units import parse_size

CONFIG_FILE_NAME = "bootvol.toml"
CONFIG_ENV_VAR = "BOOTVOL_CONFIG"
DEFAULT_DATA_DIR = Path("bootvol-data")


class CloneMethod(enum.StrEnum):
    """How a volume is cut from a cached image (``clone_method`` in the config)."""

    AUTO = "auto"  # reflink where the filesystem can, else qcow2 overlay, else sparse copy
    REFLINK = "reflink"
    QCOW2 = "qcow2"
    COPY = "copy"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CacheSettings(_Strict):
    """NetApp's cache cleaner thresholds, same names and defaults as the Cinder NFS driver."""

    thres_avl_size_perc_start: int = Field(20, ge=0, le=100)
    thres_avl_size_perc_stop: int = Field(60, ge=0, le=100)
    expiry_thres_minutes: int = Field(720, ge=0)
    clean_interval_seconds: int = Field(300, gt=0)
    # Zero runs in a cache entry shorter than this are stored as zeros, so the entry is a
    # few extents and a clone of it costs the same at any image size (bootvol.storage.layout);
    # "4k" keeps every zero block a hole: least space, clones slower with every extent.
    min_hole: int = DEFAULT_MIN_HOLE

    @field_validator("min_hole", mode="before")
    @classmethod
    def _size(cls, value: str | int) -> int:
        size = parse_size(value)
        if size < BLOCK_BYTES or size % BLOCK_BYTES:
            raise ValueError(f"min_hole must be a multiple of 4k, at least 4k (got {value!r})")
        return size

    @property
    def layout(self) -> EntryLayout:
        return EntryLayout(min_hole_bytes=self.min_hole)

    @model_validator(mode="after")
    def _start_below_stop(self) -> Self:
        if self.thres_avl_size_perc_start >= self.thres_avl_size_perc_stop:
            raise ValueError(
                "thres_avl_size_perc_start must be lower than thres_avl_size_perc_stop "
                f"(got {self.thres_avl_size_perc_start} and {self.thres_avl_size_perc_stop})"
            )
        return self


class PlacementSettings(_Strict):
    """How placement spreads volumes (bootvol.volumes.placement)."""

    # A FlexVol that caches the image gets its volumes while its share not yet provisioned
    # trails the emptiest FlexVol's by at most this many points; past that the emptiest one
    # gets the volume and caches the image too.
    spread_margin_percent: float = Field(10.0, ge=0)


class WorkerSettings(_Strict):
    """Volume workers: how claims on pending volumes expire, and how often workers look.

    A worker holds a claim on the volume it makes for ``lease_seconds`` and renews it every
    third of that while it works; a worker that dies stops renewing, and once the lease has
    run out any worker (on any node) claims the volume and makes it again from the start.
    A volume whose makers died ``max_attempts`` times ends ``error`` instead.
    """

    lease_seconds: float = Field(30.0, gt=0)
    max_attempts: int = Field(3, ge=1)
    poll_seconds: float = Field(1.0, gt=0)


class DownloadSettings(_Strict):
    """HTTP image sources: a server that sends nothing for ``read_timeout_seconds`` fails."""

    connect_timeout_seconds: float = Field(10.0, gt=0)
    read_timeout_seconds: float = Field(60.0, gt=0)


class WebDownloadSettings(_Strict):
    """Which URLs the web-download image import may fetch (Glance's [import_filtering_opts],
    same defaults): projects name them, and bootvol fetches them from inside the operator's
    network, so only the web's ports by default. Every redirect hop is checked too."""

    allowed_ports: list[int] = [80, 443]  # empty: any port
    allowed_hosts: list[str] = []  # empty: any host that is not disallowed
    disallowed_hosts: list[str] = []


class Acceleration(enum.StrEnum):
    AUTO = "auto"  # KVM where a probe guest's firmware really runs under it, else TCG
    KVM = "kvm"
    TCG = "tcg"


class ComputeSettings(_Strict):
    """Instances: whether this process runs them, and how the scheduler counts room."""

    enabled: bool = False
    accel: Acceleration = Acceleration.AUTO
    libvirt_uri: str = "qemu:///system"
    console_dir: Path | None = None  # default: <data_dir>/consoles
    host_name: str | None = None  # default: the machine's host name
    vcpus: int | None = Field(None, ge=1)  # default: the machine's
    ram_mib: int | None = Field(None, ge=64)  # default: the machine's
    poll_seconds: float = Field(1.0, gt=0)
    shutdown_timeout_seconds: float = Field(60.0, gt=0)
    # Nova's allocation ratios: vCPUs and RAM a host offers per physical one.
    cpu_allocation_ratio: float = Field(4.0, gt=0)
    ram_allocation_ratio: float = Field(1.0, gt=0)
    heartbeat_seconds: float = Field(10.0, gt=0)
    # A host silent this long is down: shown so, and given no new instance.
    down_after_seconds: float = Field(60.0, gt=0)


class CatalogSettings(_Strict):
    """What a token's service catalog lists where bootvol does not serve the API itself."""

    # A real Cinder using bootvol's engine (bootvol.cinder), e.g.
    # "http://127.0.0.1:18776/v3/{project_id}": listed as block-storage and volumev3 in
    # place of bootvol's own volume API, with the token's project id put in.
    block_storage: str | None = None

    @field_validator("block_storage")
    @classmethod
    def _http_url_template(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            example = value.format(project_id="0" * 32)
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(
                f"{value!r} may hold only the placeholder {{project_id}} ({exc!r})"
            ) from None
        parsed = urlparse(example)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ValueError(f"{value!r} is not an http:// or https:// URL")
        return value


class ClusterSettings(_Strict):
    name: str = Field(min_length=1)
    version: str = Field(pattern=r"^\d+(\.\d+)*$")


class SvmSettings(_Strict):
    name: str = Field(min_length=1)
    cluster: str
    vstorage: bool = False


class FlexVolSettings(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    svm: str
    path: Path
    volumes: bool = True
    # The NFS export ("fileserver:/exports/vol_a") that compute hosts mount this FlexVol's
    # folder from: the Cinder driver's connection info, Glance's location metadata.
    export: str | None = Field(None, pattern=r"^[^:\s]+:/\S*$")


class StorageSettings(_Strict):
    """The storage estate and how volumes are cut from it: what the engine needs, and all
    that the Cinder driver reads from its backend section (bootvol.cinder.options)."""

    copy_offload: bool = True
    clone_method: CloneMethod = CloneMethod.AUTO
    cache: CacheSettings = CacheSettings()
    cluster: list[ClusterSettings] = Field(min_length=1)
    svm: list[SvmSettings] = Field(min_length=1)
    flexvol: list[FlexVolSettings] = Field(min_length=1)

    @model_validator(mode="after")
    def _references_resolve(self) -> Self:
        _require_unique("cluster", [c.name for c in self.cluster])
        _require_unique("svm", [s.name for s in self.svm])
        _require_unique("flexvol", [f.name for f in self.flexvol])
        clusters = {c.name for c in self.cluster}
        for svm in self.svm:
            if svm.cluster not in clusters:
                raise ValueError(f"svm {svm.name!r} names unknown cluster {svm.cluster!r}")
        svms = {s.name for s in self.svm}
        for flexvol in self.flexvol:
            if flexvol.svm not in svms:
                raise ValueError(f"flexvol {flexvol.name!r} names unknown svm {flexvol.svm!r}")
        if not any(f.volumes for f in self.flexvol):
            raise ValueError("no FlexVol holds volumes: set volumes = true on at least one")
        return self


class Settings(StorageSettings):
    data_dir: Path
    image_store: str
    database_url: str | None = None
    workers: WorkerSettings = WorkerSettings()
    placement: PlacementSettings = PlacementSettings()
    download: DownloadSettings = DownloadSettings()
    web_download: WebDownloadSettings = WebDownloadSettings()
    compute: ComputeSettings = ComputeSettings()
    catalog: CatalogSettings = CatalogSettings()

    @model_validator(mode="after")
    def _image_store_known(self) -> Self:
        if self.image_store not in {f.name for f in self.flexvol}:
            raise ValueError(f"image_store {self.image_store!r} is not a [[flexvol]] name")
        return self

    @property
    def database_path(self) -> Path:
        return self.data_dir / "bootvol.sqlite"

    @property
    def console_dir(self) -> Path:
        """Where compute hosts log their servers' consoles, and the API reads them."""
        return self.compute.console_dir or self.data_dir / "consoles"

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.database_path}"


def _require_unique(kind: str, names: list[str]) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ValueError(f"two [[{kind}]] entries are named {name!r}")
        seen.add(name)


def default_config_text(data_dir: Path) -> str:
    """The embedded default: one cluster, one SVM with vstorage, three FlexVols as folders."""
    flexvols = data_dir.resolve() / "flexvols"
    blocks = "".join(
        f'\n[[flexvol]]\nname = "{name}"\nsvm = "svm1"\npath = "{flexvols / name}"\n'
        for name in ("images", "vol_a", "vol_b")
    )
    return f"""\
# bootvol configuration (written on first use; edit freely).
data_dir = "{data_dir.resolve()}"   # SQLite database and state
image_store = "images"             # the FlexVol that holds uploaded images
copy_offload = true
clone_method = "auto"              # auto | reflink | qcow2 | copy

[cache]
thres_avl_size_perc_start = 20
thres_avl_size_perc_stop = 60
expiry_thres_minutes = 720
min_hole = "1M"                    # shorter zero runs stored as zeros: clones in constant time

[placement]
spread_margin_percent = 10         # points of free share a caching FlexVol may trail by

[workers]
lease_seconds = 30                 # a dead worker's volumes are taken over after this
max_attempts = 3                   # … and fail after this many workers died making them

# database_url = "postgresql+psycopg://bootvol@db.example/bootvol"   # many nodes; default SQLite

[[cluster]]
name = "cluster1"
version = "9.14.1"

[[svm]]
name = "svm1"
cluster = "cluster1"
vstorage = true
{blocks}"""


def resolve_config_path(*, config: Path | None, data_dir: Path | None) -> Path:
    """Pick the config file; write the embedded default when none exists yet."""
    if config is not None:
        return config
    from_env = os.environ.get(CONFIG_ENV_VAR)
    if from_env:
        return Path(from_env)
    data_dir = data_dir or DEFAULT_DATA_DIR
    path = data_dir / CONFIG_FILE_NAME
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".toml.tmp")
        tmp.write_text(default_config_text(data_dir))
        tmp.replace(path)
    return path


def load_settings(path: Path) -> Settings:
    """Parse and validate one config file; raise ConfigError with line and reason."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from exc
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    # Relative paths in the file are relative to the file, not to the caller's cwd.
    raw.setdefault("data_dir", str(path.parent))
    try:
        settings = Settings.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        line = _line_of(text, first["loc"])
        where = f"{path}, line {line}" if line else str(path)
        field = ".".join(str(part) for part in first["loc"]) or "(top level)"
        raise ConfigError(f"{where}: {field}: {first['msg']}") from exc
    return _anchor_paths(settings, path.parent)


def _anchor_paths(settings: Settings, base: Path) -> Settings:
    flexvols = [f.model_copy(update={"path": (base / f.path).resolve()}) for f in settings.flexvol]
    return settings.model_copy(
        update={"data_dir": (base / settings.data_dir).resolve(), "flexvol": flexvols}
    )


_TABLE = re.compile(r"^\s*\[\[?\s*([A-Za-z0-9_.]+)\s*\]\]?\s*$")


def _line_of(text: str, loc: tuple[Any, ...]) -> int | None:
    """Best effort: the 1-based line of the key a validation error points at."""
    table, index, key = None, None, None
    parts = list(loc)
    if parts and isinstance(parts[0], str) and len(parts) >= 2 and isinstance(parts[1], int):
        table, index = parts[0], parts[1]
        key = parts[2] if len(parts) > 2 and isinstance(parts[2], str) else None
    elif len(parts) >= 2 and isinstance(parts[0], str) and isinstance(parts[1], str):
        table, key = parts[0], parts[1]
    elif parts and isinstance(parts[0], str):
        key = parts[0]
        table = key  # a whole table ([cache]) is refused: point at its header
    current, seen = None, -1
    header_line = None
    for number, line in enumerate(text.splitlines(), start=1):
        match = _TABLE.match(line)
        if match:
            current = match.group(1)
            if current == table:
                seen += 1
                if index is None or seen == index:
                    header_line = number
            continue
        in_place = (current is None and (table is None or table == key)) or (
            current == table and (index is None or seen == index)
        )
        if in_place and key and re.match(rf"^\s*{re.escape(key)}\s*=", line):
            return number
    return header_line
