"""`bootvol worker`: volume workers without the API, for more nodes sharing the database.

Run it on any node that has the same config: the same ``database_url`` (PostgreSQL) and the
FlexVols mounted at the same paths. It claims pending volumes from the database like the
workers inside ``bootvol serve`` do, and runs the cache cleaner every
``[cache] clean_interval_seconds`` as a server does, until SIGTERM or Ctrl-C.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType

import typer

from bootvol.background import Background
from bootvol.cli import output
from bootvol.cli.context import bootvol


def worker(
    ctx: typer.Context,
    threads: int = typer.Option(2, "--threads", min=1, help="Volumes made at once."),
) -> None:
    """Make pending volumes (claimed from the database) and clean caches until SIGTERM or Ctrl-C."""
    app = bootvol(ctx)
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    background = Background(app, threads=threads)
    background.start()
    database = app.sessions.kw["bind"].url.render_as_string(hide_password=True)
    output.errors.print(f"worker: {threads} threads on {database}", highlight=False)
    stop.wait()
    background.stop()
