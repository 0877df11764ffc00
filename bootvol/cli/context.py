"""The Bootvol object a command works on, opened once from the global options."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import typer

from bootvol.runtime import Bootvol, open_bootvol


@dataclass
class CliState:
    config: Path | None = None
    data_dir: Path | None = None
    _opened: Bootvol | None = field(default=None, repr=False)

    def bootvol(self) -> Bootvol:
        if self._opened is None:
            self._opened = open_bootvol(config=self.config, data_dir=self.data_dir)
        return self._opened


def state(ctx: typer.Context) -> CliState:
    root = ctx.find_root()
    if not isinstance(root.obj, CliState):
        root.obj = CliState()
    return root.obj


def bootvol(ctx: typer.Context) -> Bootvol:
    return state(ctx).bootvol()
