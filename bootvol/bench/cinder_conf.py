"""cinder.conf for a throwaway real Cinder, written from typed descriptions.

:class:`CinderBackend` is one ``[backend]`` section: which driver class cinder-volume loads,
from where, and the driver's own options in order (a key may repeat: oslo.config's
``MultiOpt``). :func:`bootvol_backend` describes a backend of bootvol's driver over a
:class:`StorageLayout`, the clusters, SVMs and FlexVols every backend and bootvol's Glance
share. :class:`CinderConf` renders the whole file:

* ``auth_strategy = keystone`` against bootvol's Keystone (``[keystone_authtoken]``), and the
  same service user in ``[glance]``, which Cinder uses for the privileged image-locations
  call (``cinder/image/glance.py`` ``get_location``); ``glance_api_servers`` is bootvol's
  ``…/image``.
* privsep without sudo (there is none here): ``helper_command`` in ``[cinder_sys_admin]`` and
  ``[privsep_osbrick]``, with ``--config-file`` inside the value, because only the default
  command adds it (``oslo_privsep/priv_context.py``).
* files that Cinder looks for under /etc/cinder by default (the paste pipeline, the rootwrap
  config, the API's resource filters) taken from the venv, where pip puts them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bootvol.config import (
    CloneMethod,
    ClusterSettings,
    FlexVolSettings,
    StorageSettings,
    SvmSettings,
)
from bootvol.storage.topology import Topology

BOOTVOL_DRIVER = "bootvol.cinder.BootvolDriver"


@dataclass(frozen=True)
class CinderBackend:
    """One cinder-volume backend: its section, ``volume_backend_name`` and volume type."""

    name: str
    volume_driver: str  # "package.module.Class"
    options: tuple[tuple[str, str], ...] = ()  # the driver's own, in order; keys may repeat
    python_path: tuple[Path, ...] = ()  # where cinder-volume imports the driver from

    def section(self) -> list[str]:
        lines = [
            f"[{self.name}]",
            f"volume_driver = {self.volume_driver}",
            f"volume_backend_name = {self.name}",
            # Cinder's own image-volume cache would stand in front of the driver's
            # clone_image; bootvol's per-FlexVol cache is the point of the exercise.
            "image_volume_cache_enabled = false",
        ]
        lines += [f"{key} = {value}" for key, value in self.options]
        return lines


@dataclass(frozen=True)
class StorageLayout:
    """The clusters, SVMs and FlexVols that the backends and bootvol's Glance share.

    ``volumes`` in each FlexVol is ignored here: a backend decides which of them hold its
    volumes (its pools).
    """

    clusters: tuple[ClusterSettings, ...]
    svms: tuple[SvmSettings, ...]
    flexvols: tuple[FlexVolSettings, ...]

    def flexvol(self, name: str) -> FlexVolSettings:
        for flexvol in self.flexvols:
            if flexvol.name == name:
                return flexvol
        raise KeyError(f"no FlexVol named {name!r}")

    def topology(self) -> Topology:
        """The estate as the engine sees it (to read a FlexVol's space or locks)."""
        settings = StorageSettings(
            cluster=list(self.clusters), svm=list(self.svms), flexvol=list(self.flexvols)
        )
        return Topology.from_settings(settings)


def bootvol_backend(
    name: str,
    *,
    storage: StorageLayout,
    pools: Sequence[str],
    copy_offload: bool = True,
    clone_method: CloneMethod = CloneMethod.AUTO,
    volume_driver: str = BOOTVOL_DRIVER,
) -> CinderBackend:
    """A backend of bootvol's driver whose pools are the FlexVols ``pools``.

    Every other FlexVol of ``storage`` is listed too, with ``volumes:false``: the driver then
    knows them as sources, for copy offload from their caches and image files.
    """
    unknown = set(pools) - {f.name for f in storage.flexvols}
    if unknown:
        raise ValueError(f"backend {name}: pools {sorted(unknown)} are not FlexVols")
    options = [
        ("bootvol_cluster", _dict_value(name=c.name, version=c.version)) for c in storage.clusters
    ]
    options += [
        ("bootvol_svm", _dict_value(name=s.name, cluster=s.cluster, vstorage=s.vstorage))
        for s in storage.svms
    ]
    for flexvol in storage.flexvols:
        fields: dict[str, str | bool] = {
            "name": flexvol.name,
            "svm": flexvol.svm,
            "path": str(flexvol.path),
        }
        if flexvol.export is not None:
            fields["export"] = flexvol.export
        fields["volumes"] = flexvol.name in pools
        options.append(("bootvol_flexvol", _dict_value(**fields)))
    options += [
        ("bootvol_copy_offload", _bool(copy_offload)),
        ("bootvol_clone_method", str(clone_method)),
    ]
    return CinderBackend(name=name, volume_driver=volume_driver, options=tuple(options))


def _dict_value(**fields: str | bool) -> str:
    """oslo.config's Dict syntax: ``key:value, key:value``; a value is cut at the first
    comma, and only the first colon separates key and value."""
    parts = []
    for key, value in fields.items():
        text = _bool(value) if isinstance(value, bool) else value
        if "," in text or text != text.strip() or not text:
            raise ValueError(f"{key}={text!r} cannot be written as an oslo.config Dict value")
        parts.append(f"{key}:{text}")
    return ", ".join(parts)


def _bool(value: bool) -> str:
    return "true" if value else "false"


@dataclass(frozen=True)
class ServiceUser:
    """Keystone credentials Cinder's services authenticate with (project-scoped)."""

    auth_url: str  # …/identity/v3
    username: str
    password: str
    project: str


@dataclass(frozen=True)
class CinderConf:
    folder: Path  # cinder.conf, state/, logs/ live here
    venv: Path  # the Cinder virtualenv (.cinder-venv)
    host: str  # services register as <host>, volume backends as <host>@<backend>
    transport_url: str
    api_port: int
    keystone: ServiceUser
    glance_url: str  # bootvol's image API root, http://127.0.0.1:<port>/image
    database_url: str  # SQLAlchemy URL; SQLite fails under Cinder's concurrent writers
    backends: tuple[CinderBackend, ...]
    debug: bool = False

    @property
    def path(self) -> Path:
        return self.folder / "cinder.conf"

    @property
    def state_dir(self) -> Path:
        return self.folder / "state"

    @property
    def log_dir(self) -> Path:
        return self.folder / "logs"

    def write(self) -> Path:
        for folder in (self.state_dir, self.log_dir, self.state_dir / "lock"):
            folder.mkdir(parents=True, exist_ok=True)
        self.path.write_text(self.render())
        return self.path

    def render(self) -> str:
        etc = self.venv / "etc" / "cinder"
        helper = f"{self.venv / 'bin' / 'privsep-helper'} --config-file {self.path}"
        lines = [
            "# Written by bootvol.bench.cinder_stack for a throwaway Cinder; not for editing.",
            "[DEFAULT]",
            f"host = {self.host}",
            f"state_path = {self.state_dir}",
            f"log_dir = {self.log_dir}",
            f"debug = {_bool(self.debug)}",
            f"transport_url = {self.transport_url}",
            "auth_strategy = keystone",
            f"api_paste_config = {etc / 'api-paste.ini'}",
            f"rootwrap_config = {etc / 'rootwrap.conf'}",
            f"resource_query_filters_file = {etc / 'resource_filters.json'}",
            "osapi_volume_listen = 127.0.0.1",
            f"osapi_volume_listen_port = {self.api_port}",
            "osapi_volume_workers = 1",
            f"enabled_backends = {','.join(b.name for b in self.backends)}",
            f"glance_api_servers = {self.glance_url}",
            # Fresh capacity for the scheduler between volumes (default 60 s).
            "backend_stats_polling_interval = 10",
            "",
            "[database]",
            f"connection = {self.database_url}",
            "",
            "[oslo_concurrency]",
            f"lock_path = {self.state_dir / 'lock'}",
            "",
            "[coordination]",
            f"backend_url = file://{self.state_dir / 'coordination'}",
            "",
            "[keystone_authtoken]",
            f"www_authenticate_uri = {self.keystone.auth_url}",
            *self._auth_options(),
            "",
            "[glance]",
            *self._auth_options(),
            "",
            "[cinder_sys_admin]",
            f"helper_command = {helper}",
            "",
            "[privsep_osbrick]",
            f"helper_command = {helper}",
        ]
        for backend in self.backends:
            lines += ["", *backend.section()]
        return "\n".join(lines) + "\n"

    def _auth_options(self) -> list[str]:
        return [
            "auth_type = password",
            f"auth_url = {self.keystone.auth_url}",
            f"username = {self.keystone.username}",
            f"password = {self.keystone.password}",
            f"project_name = {self.keystone.project}",
            "user_domain_name = Default",
            "project_domain_name = Default",
        ]
