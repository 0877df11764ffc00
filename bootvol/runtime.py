"""Wiring: one object that holds settings, database, storage and services for a process."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bootvol.compute.flavors import FlavorService
from bootvol.compute.hosts import HostRegistry
from bootvol.compute.server_volumes import ServerVolumes
from bootvol.compute.service import ServerService
from bootvol.config import Settings, load_settings, resolve_config_path
from bootvol.db.session import SessionFactory, open_database
from bootvol.identity.service import IdentityService
from bootvol.images.members import ImageMembers
from bootvol.images.service import ImageService
from bootvol.images.store import ImageStore
from bootvol.metrics import Metrics
from bootvol.storage.topology import Topology
from bootvol.volumes.service import VolumeService


@dataclass
class Bootvol:
    settings: Settings
    config_path: Path
    sessions: SessionFactory
    topology: Topology
    images: ImageService
    image_members: ImageMembers  # the projects shared images are shared with
    volumes: VolumeService
    identity: IdentityService
    metrics: Metrics
    flavors: FlavorService
    hosts: HostRegistry
    servers: ServerService
    server_volumes: ServerVolumes  # data volumes on servers


def open_bootvol(*, config: Path | None = None, data_dir: Path | None = None) -> Bootvol:
    """Load the config (writing the embedded default on first use) and open everything."""
    config_path = resolve_config_path(config=config, data_dir=data_dir)
    settings = load_settings(config_path)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    topology = Topology.from_settings(settings)
    for flexvol in topology:
        flexvol.ensure(create=True)  # the first start makes a folder FlexVol
        flexvol.remove_stale_scratch()  # left by a process that died mid-operation
    sessions = open_database(settings.effective_database_url)
    images = ImageService(
        sessions=sessions,
        store=ImageStore(topology.get(settings.image_store)),
        web_download=settings.web_download,
        download=settings.download,
        lease_seconds=settings.workers.lease_seconds,
    )
    metrics = Metrics()
    volumes = VolumeService(
        sessions=sessions, topology=topology, images=images, settings=settings, observer=metrics
    )
    flavors = FlavorService(sessions)
    flavors.ensure_defaults()
    hosts = HostRegistry(sessions, down_after_seconds=settings.compute.down_after_seconds)
    servers = ServerService(
        sessions=sessions,
        settings=settings,
        images=images,
        volumes=volumes,
        flavors=flavors,
        hosts=hosts,
    )
    return Bootvol(
        settings=settings,
        config_path=config_path,
        sessions=sessions,
        topology=topology,
        images=images,
        image_members=ImageMembers(sessions=sessions, images=images),
        volumes=volumes,
        identity=IdentityService(sessions=sessions),
        metrics=metrics,
        flavors=flavors,
        hosts=hosts,
        servers=servers,
        server_volumes=ServerVolumes(servers),
    )
