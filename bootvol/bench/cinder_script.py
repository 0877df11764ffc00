"""What ``scripts/cinder-demo`` and ``scripts/cinder-bench`` share: progress lines on stderr,
a throwaway work folder kept only when the stack failed, one JSON object on stdout."""

from __future__ import annotations

import json
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bootvol.bench.cinder_stack import StackError


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def run_script(name: str, run: Callable[[Path], dict[str, Any]]) -> int:
    """``run(work folder)`` and print its result as JSON; 1 with the folder kept on failure."""
    # SIGTERM unwinds like Ctrl-C, so that the stack and the mounts are torn down.
    signal.signal(signal.SIGTERM, _interrupt)
    base = Path(tempfile.mkdtemp(prefix=f"bootvol-{name}-"))
    try:
        result = run(base)
    except StackError as exc:
        say(f"failed: {exc}")
        say(f"the stack's files (logs, cinder.conf) are kept in {base}")
        return 1
    shutil.rmtree(base, ignore_errors=True)
    print(json.dumps(result))
    return 0


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")
