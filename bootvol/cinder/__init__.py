"""bootvol's engine as a Cinder volume driver: ``volume_driver = bootvol.cinder.BootvolDriver``.

Pools are the backend's FlexVols; a volume from an image takes the flowchart's cheapest path
inside ``clone_image``, and the download, when nothing cheaper applies, is Cinder's own
(``copy_image_to_volume`` fills the cache from the file Cinder fetched, so the next volume
of that image is a cache-clone).

Modules: ``options`` (the backend section → StorageSettings), ``backend`` (the engine's
operations on volume and snapshot files, without Cinder), ``images`` (Cinder's image
metadata and locations → ImageSource), ``records`` (provisioning records ↔ volume
metadata), ``driver`` (the Cinder class, thin). Only ``driver`` and ``options`` import
Cinder or oslo.config, so the rest is tested without them.
"""

from __future__ import annotations

from typing import Any

__all__ = ["BootvolDriver"]


def __getattr__(name: str) -> Any:
    # Lazily: importing bootvol.cinder.records must not need Cinder installed.
    if name == "BootvolDriver":
        from bootvol.cinder.driver import BootvolDriver

        return BootvolDriver
    raise AttributeError(name)
