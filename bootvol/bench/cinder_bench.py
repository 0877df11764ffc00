"""``./scripts/cinder-bench``: time to ``available`` through the real Cinder, cached image
against Cinder's download path, measured side by side in one run.

An image of ``--image-mib`` MiB of real (random, incompressible) data is registered in
bootvol's Glance by URL, its bytes on an HTTP server on loopback and in no FlexVol, so that
nothing cheaper than a download applies to its first volume. Each round registers the image
afresh (a new id, so nothing is cached), then creates through Cinder's API:

    download     the first volume: Cinder downloads the image from Glance to a temporary
                 file and checks it; the driver fills its pool's cache from that file
                 (checksums, format inspection) and clones the volume from the entry;
    cache-clone  ``--clones`` more volumes of the same image on the same backend: the driver
                 clones the cache entry in ``clone_image`` and Cinder downloads nothing.

Seconds are wall time from the API request to the first poll (every 50 ms) that sees the
volume ``available``. Prints a table on stderr and one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bootvol.bench.cinder_layout import backend_layout, throwaway_flexvols
from bootvol.bench.cinder_script import run_script, say
from bootvol.bench.cinder_stack import CinderStack, StackError
from bootvol.bench.local_server import LocalFileServer
from bootvol.bench.samples import make_raw, register_remote
from bootvol.units import MiB

BACKEND = "bv_a"


@dataclass(frozen=True)
class Timing:
    round: int
    path: str
    seconds: float


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cinder-bench", description=__doc__.splitlines()[0])
    parser.add_argument("--image-mib", type=int, default=1024, help="image size (MiB)")
    parser.add_argument("--rounds", type=int, default=3, help="fresh images to time")
    parser.add_argument("--clones", type=int, default=3, help="cache-clones per round")
    args = parser.parse_args(argv)
    return run_script(
        "cinder-bench",
        lambda base: _run(base, image_mib=args.image_mib, rounds=args.rounds, clones=args.clones),
    )


def _run(base: Path, *, image_mib: int, rounds: int, clones: int) -> dict[str, Any]:
    served = base / "served"
    served.mkdir()
    image = make_raw(served / "image.raw", size_bytes=image_mib * MiB, fill_every_mib=1)
    # Every cached copy of the image is a full one; volumes are reflinks (no space).
    flexvol_mib = max(4096, (rounds + 1) * image_mib * 2)
    timings: list[Timing] = []
    with (
        LocalFileServer(served) as server,
        throwaway_flexvols(base / "flexvols", size_mib=flexvol_mib) as flexvols,
    ):
        storage, backends = backend_layout(flexvols)
        say("bringing the stack up (RabbitMQ, PostgreSQL, bootvol, Cinder)…")
        with CinderStack(base / "work", storage=storage, backends=backends) as stack:
            version = stack.cinder_version
            for round_ in range(1, rounds + 1):
                image_id = _register(stack, server, image)
                made = []
                for path in ["download"] + ["cache-clone"] * clones:
                    volume_id, seconds = _time_volume(stack, image_id, path)
                    made.append(volume_id)
                    timings.append(Timing(round_, path, seconds))
                for volume_id in made:  # within the project's volume quota, round after round
                    stack.cinder("DELETE", f"/volumes/{volume_id}", cloud="member")
                for volume_id in made:
                    stack.wait_for_volume(volume_id, ("deleted",), cloud="member")
                done = [t for t in timings if t.round == round_]
                say(f"round {round_}: " + ", ".join(f"{t.path} {t.seconds:.2f} s" for t in done))
    download = statistics.median(t.seconds for t in timings if t.path == "download")
    clone = statistics.median(t.seconds for t in timings if t.path == "cache-clone")
    say(
        f"Cinder {version}, {image_mib} MiB image: download path {download:.2f} s, "
        f"cache-clone {clone:.2f} s (medians): {download / clone:.1f}× faster from the cache"
    )
    return {
        "cinder": version,
        "image_mib": image_mib,
        "median_seconds": {"download": round(download, 3), "cache-clone": round(clone, 3)},
        "speedup": round(download / clone, 1),
        "timings": [asdict(t) for t in timings],
    }


def _register(stack: CinderStack, server: LocalFileServer, image: Path) -> str:
    assert stack.bootvol is not None
    url = server.url_for(image.name)
    return register_remote(stack.bootvol.bootvol.images, image, url=url, disk_format="raw")


def _time_volume(stack: CinderStack, image_id: str, path: str) -> tuple[str, float]:
    """Seconds from the request to ``available``; the driver must have taken ``path`` (a
    benchmark that timed another path would mislead)."""
    body = {"volume": {"size": 1, "imageRef": image_id, "volume_type": BACKEND}}
    started = time.monotonic()
    created = stack.cinder("POST", "/volumes", cloud="member", json=body)["volume"]
    while True:
        volume = stack.cinder("GET", f"/volumes/{created['id']}", cloud="member")["volume"]
        if volume["status"] == "available":
            seconds = time.monotonic() - started
            taken = volume["metadata"].get("bootvol:path")
            if taken != path:
                raise StackError(f"volume {volume['id']} took {taken}, not {path}")
            return volume["id"], seconds
        if volume["status"].startswith("error"):
            raise StackError(f"volume {created['id']} ended {volume['status']}")
        threading.Event().wait(0.05)


if __name__ == "__main__":
    sys.exit(main())
