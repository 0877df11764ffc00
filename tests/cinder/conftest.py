"""The real OpenStack Cinder (from .cinder-venv) running bootvol's driver, for the session.

``cinder_stack`` is one ``CinderStack`` (bootvol.bench.cinder_stack) shared by every test
here, since it takes seconds to start: a private RabbitMQ and PostgreSQL, bootvol's Keystone
and Glance in the test process, cinder-api, -scheduler and -volume. Its FlexVols are XFS
(reflink=1) loopback filesystems, one each:

    images   bootvol's Glance image store (exported as fileserver:/exports/images)
    vol_a    the pool of backend bv_a (volume type bv_a)
    vol_b    the pool of backend bv_b (volume type bv_b)

and each backend lists the FlexVols it does not own with ``volumes:false``, so that copy
offload between them is possible. Volumes without a type go where the scheduler likes.

Tests must leave the stack as they found it (delete what they create). A failed test's
report ends with the last lines of every log of the stack.

Root, loop devices, RabbitMQ, PostgreSQL and .cinder-venv are needed (./scripts/setup
provides the last three). Without them the tests skip, except under CI=true, where a skip
would hide a broken machine: there they fail.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bootvol.bench.cinder_layout import backend_layout, throwaway_flexvols
from bootvol.bench.cinder_stack import CinderStack, cinder_unavailable

from ..support import require, require_loopback

FLEXVOL_MIB = 2048  # sparse backing files: they cost what is written


def require_cinder() -> None:
    """The real Cinder stack (and root, loop devices)."""
    require_loopback()
    require("the real Cinder stack", cinder_unavailable())


@pytest.fixture(scope="session")
def cinder_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CinderStack]:
    require_cinder()
    base = tmp_path_factory.mktemp("cinder-stack")
    with throwaway_flexvols(base / "flexvols", size_mib=FLEXVOL_MIB) as flexvols:
        storage, backends = backend_layout(flexvols)
        with CinderStack(base / "work", storage=storage, backends=backends, debug=True) as stack:
            yield stack


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    stack = getattr(item, "funcargs", {}).get("cinder_stack")
    if report.when == "call" and report.failed and isinstance(stack, CinderStack):
        report.sections.append(("Cinder stack logs (last lines)", stack.failure_report()))
