"""``./scripts/cinder-demo``: the real OpenStack Cinder making boot volumes with bootvol's driver.

As root, on throwaway XFS reflink FlexVols (loop devices): brings the Cinder stack up
(bench/cinder_stack.py), uploads a qcow2 sample to bootvol's Glance with the real
``openstack image create``, creates two volumes from it (one per backend) and one from the
first volume (``openstack volume create --image …`` / ``--source …``), then tears everything
down and prints one JSON object on stdout::

    {"cinder": "29.0.0",
     "volumes": [{"id": "…", "path": "copy-offload", "seconds": 0.41, "content_ok": true}, …]}

``path`` is the provisioning path the driver recorded (volume metadata ``bootvol:path``, null
if absent); ``seconds`` is Cinder's own time for the volume, its ``created_at`` (the API took
the request) to its ``updated_at`` once ``available``, so the command-line client's start-up
is not counted; ``content_ok`` is ``qemu-img compare`` of the volume file with the uploaded
image: equal guest-visible bytes, the volume's extra room all zeros. Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bootvol.bench.cinder_layout import backend_layout, throwaway_flexvols
from bootvol.bench.cinder_script import run_script, say
from bootvol.bench.cinder_stack import CinderStack
from bootvol.bench.content import same_guest_content
from bootvol.bench.samples import make_qcow2, make_raw
from bootvol.units import MiB

FLEXVOL_MIB = 4096  # sparse backing files: they cost what is written
VOLUME_GIB = 1
IMAGE_NAME = "cinder-demo"


@dataclass(frozen=True)
class DemoVolume:
    id: str
    path: str | None
    seconds: float
    content_ok: bool


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cinder-demo", description=__doc__.splitlines()[0])
    parser.add_argument("--image-mib", type=int, default=64, help="sample image size (MiB)")
    args = parser.parse_args(argv)
    return run_script("cinder-demo", lambda base: _run(base, image_bytes=args.image_mib * MiB))


def _run(base: Path, *, image_bytes: int) -> dict[str, Any]:
    raw = make_raw(base / "sample.raw", size_bytes=image_bytes)
    image_file = make_qcow2(raw, base / "sample.qcow2")
    say(f"sample image: {image_bytes // MiB} MiB raw, {image_file.stat().st_size} bytes qcow2")
    with throwaway_flexvols(base / "flexvols", size_mib=FLEXVOL_MIB) as flexvols:
        storage, backends = backend_layout(flexvols)
        say("bringing the stack up (RabbitMQ, PostgreSQL, bootvol, Cinder)…")
        with CinderStack(base / "work", storage=storage, backends=backends) as stack:
            say(f"Cinder {stack.cinder_version} up in {stack.timings['up']:.1f} s")
            volumes = _make_volumes(stack, image_file)
            version = stack.cinder_version
        say(f"stack down in {stack.timings['down']:.1f} s; loop FlexVols unmounted")
    return {"cinder": version, "volumes": [asdict(volume) for volume in volumes]}


def _make_volumes(stack: CinderStack, image_file: Path) -> list[DemoVolume]:
    image = stack.openstack_json(
        "image",
        "create",
        "--disk-format",
        "qcow2",
        "--container-format",
        "bare",
        "--file",
        str(image_file),
        IMAGE_NAME,
        cloud="member",
    )
    say(f"image {image['id']} uploaded to bootvol's Glance")
    made = []
    asked = [
        ("from-image-a", "bv_a", ["--image", image["id"]]),
        ("from-image-b", "bv_b", ["--image", image["id"]]),
    ]
    for name, volume_type, source in asked:
        made.append(_make_volume(stack, name, ["--type", volume_type, *source], image_file))
    made.append(_make_volume(stack, "from-volume", ["--source", made[0].id], image_file))
    return made  # the teardown removes them with their FlexVols


def _make_volume(stack: CinderStack, name: str, options: list[str], image_file: Path) -> DemoVolume:
    created = stack.openstack_json(
        "volume", "create", "--size", str(VOLUME_GIB), *options, name, cloud="member"
    )
    stack.wait_for_volume(created["id"], cloud="member")
    # As admin: the host attribute (backend and pool) is shown to admins only.
    volume = stack.cinder("GET", f"/volumes/{created['id']}")["volume"]
    seconds = (_when(volume["updated_at"]) - _when(volume["created_at"])).total_seconds()
    content_ok = same_guest_content(image_file, stack.volume_file(volume), image_format="qcow2")
    path = volume["metadata"].get("bootvol:path")
    say(
        f"{name}: {volume['id']} available in {seconds:.3f} s on "
        f"{volume['os-vol-host-attr:host']} by {path or '?'}; content "
        f"{'equals the image' if content_ok else 'DIFFERS from the image'}"
    )
    return DemoVolume(id=volume["id"], path=path, seconds=round(seconds, 3), content_ok=content_ok)


def _when(timestamp: str) -> dt.datetime:
    return dt.datetime.fromisoformat(timestamp)


if __name__ == "__main__":
    sys.exit(main())
