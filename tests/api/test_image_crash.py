"""A `bootvol serve` killed mid-transfer leaves no image stuck: an upload, a stage and a
web-download import are each held at a known point, the process is killed (SIGKILL, no
cleanup), and the next process settles them once their leases run out: the upload
``killed``, the stage and the import back to ``queued``, saying why, with no file behind.
A transfer that is alive keeps its image however long it takes."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx

from bootvol.bench.api_service import project_tokens
from bootvol.bench.service_process import ServiceProcess
from bootvol.caller import OPERATOR
from bootvol.db.models import ImageRecord, ImageStatus
from bootvol.images.imports import IMPORT_ERROR_PROPERTY, ImportMethod, ImportRequest

from ..faulty_http import FaultyServer
from ..support import Estate, MiB

OCTETS = {"Content-Type": "application/octet-stream"}


def _wait(condition: Callable[[], bool], what: str, *, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(0.05)


class HeldBody:
    """A request body that sends one MiB, then waits until released: a transfer the test
    stops at a known point."""

    def __init__(self) -> None:
        self.sent = threading.Event()
        self.release = threading.Event()

    def __iter__(self) -> Iterator[bytes]:
        yield bytes(MiB)
        self.sent.set()
        self.release.wait()


def _send(url: str, token: str, body: HeldBody) -> threading.Thread:
    def put() -> None:
        with contextlib.suppress(httpx.HTTPError):  # killed under it: the point of the test
            httpx.put(url, content=body, headers={"X-Auth-Token": token, **OCTETS}, timeout=120)

    thread = threading.Thread(target=put, daemon=True)
    thread.start()
    return thread


def test_a_killed_service_leaves_no_image_in_a_transient_status(
    make_estate: Callable[..., Estate], tmp_path: Path
) -> None:
    estate = make_estate(extra="[workers]\nlease_seconds = 6\n[web_download]\nallowed_ports = []")
    images = estate.app.images
    faulty_folder = tmp_path / "faulty"
    faulty_folder.mkdir()
    qcow2 = estate.sample_qcow2(estate.sample("d.raw", size_mib=4), "d.qcow2")
    (faulty_folder / "d.qcow2").write_bytes(qcow2.read_bytes())

    def status(image_id: str) -> ImageStatus:
        return images.get(image_id).status

    with FaultyServer(faulty_folder) as faulty:
        victim = ServiceProcess(estate.config, workers=1, log=tmp_path / "victim.log")
        with victim:
            (member,) = project_tokens(victim.base_url, estate.app, 1)
            glance = httpx.Client(
                base_url=f"{victim.base_url}/image/v2",
                headers={"X-Auth-Token": member.token},
                timeout=30,
            )

            def create(disk_format: str) -> str:
                body = {"name": "x", "disk_format": disk_format, "container_format": "bare"}
                created = glance.post("/images", json=body)
                assert created.status_code == 201, created.text
                return str(created.json()["id"])

            uploaded, staged, imported = create("raw"), create("raw"), create("qcow2")
            resting = create("raw")  # staged whole, waiting for its import: not abandoned
            done = glance.put(f"/images/{resting}/stage", content=bytes(MiB), headers=OCTETS)
            assert done.status_code == 204, done.text
            upload_body, stage_body = HeldBody(), HeldBody()
            _send(f"{victim.base_url}/image/v2/images/{uploaded}/file", member.token, upload_body)
            _send(f"{victim.base_url}/image/v2/images/{staged}/stage", member.token, stage_body)
            faulty.mode = "hold"
            started = glance.post(
                f"/images/{imported}/import",
                json={"method": {"name": "web-download", "uri": faulty.url_for("d.qcow2")}},
            )
            assert started.status_code == 202, started.text
            _wait(lambda: status(uploaded) == ImageStatus.SAVING, "the upload saving")
            _wait(lambda: status(staged) == ImageStatus.UPLOADING, "the stage uploading")
            _wait(lambda: faulty.held == 1, "the web-download held halfway")
            assert status(imported) == ImageStatus.IMPORTING

            # Alive, however long: their leases are renewed and nothing settles them.
            renewals: set[object] = set()

            def renewed_past_a_lease() -> bool:
                renewals.add(images.get(uploaded).updated_at)
                return len(renewals) >= 5  # a renewal every 2 s: past the 6 s lease

            _wait(renewed_past_a_lease, "the live upload's lease renewed past a lease")
            assert status(uploaded) == ImageStatus.SAVING
            assert status(staged) == ImageStatus.UPLOADING
            assert status(imported) == ImageStatus.IMPORTING

            victim.kill()
        for body in (upload_body, stage_body):
            body.release.set()
        faulty.resume()

        with ServiceProcess(estate.config, workers=1, log=tmp_path / "next.log"):

            def settled() -> bool:
                return all(
                    status(i) in (ImageStatus.KILLED, ImageStatus.QUEUED)
                    for i in (uploaded, staged, imported)
                )

            _wait(settled, "the three images settled by the next process")

    killed = images.get(uploaded)
    assert killed.status == ImageStatus.KILLED and "upload interrupted" in (killed.message or "")
    for image_id, doing in ((staged, "staging"), (imported, "the import")):
        record: ImageRecord = images.get(image_id)
        assert record.status == ImageStatus.QUEUED
        assert f"{doing} was interrupted" in (record.properties or {})[IMPORT_ERROR_PROPERTY]
        assert not images.store.has_staged(image_id)
    assert not any(images.store.path_for(i).exists() for i in (uploaded, staged, imported))

    # The image staged whole is still waiting for its import, and it imports.
    assert images.get(resting).status == ImageStatus.UPLOADING
    assert images.store.has_staged(resting)
    images.imports.start(resting, ImportRequest(ImportMethod.GLANCE_DIRECT), caller=OPERATOR)
    _wait(lambda: status(resting) == ImageStatus.ACTIVE, "the resting image imported")
    # Queued again, the image takes a new stage.
    images.imports.stage(staged, iter([bytes(MiB)]), caller=OPERATOR)
    assert images.get(staged).status == ImageStatus.UPLOADING
