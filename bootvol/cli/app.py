"""The `bootvol` command: global options, sub-command groups, and error → exit code."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import typer
from rich.logging import RichHandler

from bootvol.cli import (
    bench,
    bench_load,
    cache,
    compute,
    demo,
    flexvol,
    identity,
    image,
    output,
    serve,
    server,
    volume,
    worker,
)
from bootvol.cli.context import state
from bootvol.config import CONFIG_ENV_VAR
from bootvol.errors import BootvolError

app = typer.Typer(
    help="bootvol: boot volumes from images in milliseconds (image cache, file clones, "
    "copy offload, download only as a last resort).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(image.app, name="image")
app.add_typer(volume.app, name="volume")
app.add_typer(cache.app, name="cache")
app.add_typer(flexvol.app, name="flexvol")
app.add_typer(compute.flavor_app, name="flavor")
app.add_typer(compute.host_app, name="host")
app.add_typer(server.app, name="server")
app.command("demo")(demo.demo)
app.command("bench")(bench.bench)
app.command("bench-load")(bench_load.bench_load)
app.command("serve")(serve.serve)
app.command("worker")(worker.worker)
app.add_typer(identity.project_app, name="project")
app.add_typer(identity.user_app, name="user")


@app.callback()
def main_options(
    ctx: typer.Context,
    config: Path | None = typer.Option(
        None, "--config", envvar=CONFIG_ENV_VAR, help="Config file (TOML).", dir_okay=False
    ),
    data_dir: Path | None = typer.Option(
        None, "--data-dir", help="Data folder for the embedded default [./bootvol-data]."
    ),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log each step."),
) -> None:
    _configure_logging(verbose=verbose)
    logging.getLogger("alembic").setLevel(logging.WARNING)  # migrations are not news
    cli_state = state(ctx)
    cli_state.config = config
    cli_state.data_dir = data_dir


def _configure_logging(*, verbose: bool) -> None:
    """Rich's columns on a terminal; one plain line per record otherwise (a journal, a file
    or a pipe), never wrapped, so that each line can be grepped and parsed."""
    level = logging.INFO if verbose else logging.WARNING
    if output.errors.is_terminal:
        handler: logging.Handler = RichHandler(console=output.errors, show_path=False)
        logging.basicConfig(level=level, format="%(message)s", handlers=[handler])
    else:
        logging.basicConfig(
            level=level,
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
            stream=sys.stderr,
        )


def main() -> None:
    try:
        # Standalone mode: Click prints usage errors and exits 2, Ctrl-C exits 1 ("Aborted!").
        app()
    except BootvolError as exc:
        output.errors.print(f"[bold red]error:[/bold red] {exc.message}", highlight=False)
        sys.exit(exc.exit_code)
