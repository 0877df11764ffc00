"""Child processes of the throwaway stacks, each in a session of its own, stopped whole.

A service such as cinder-volume forks workers (one per backend) and helpers (privsep-helper,
qemu-img); killing the pid we started would orphan them. So every child starts with
``setsid`` (``start_new_session``), which makes it the leader of a new process group that
its descendants inherit, and :func:`stop_children` signals whole groups and waits until no
member is left. Membership is read from ``/proc``: a zombie (dead, not yet reaped by its
parent, or by an init that never reaps) counts as gone.

Descendants that left the group with a ``setsid`` of their own (Erlang's ``erl_child_setup``
and ``inet_gethost``) are found by parentage when stopping starts, and waited for too. A
daemon that also left its parent (Erlang's ``epmd`` forks twice) must be stopped by its owner;
:func:`processes_naming` finds what would be left over.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

POLL_SECONDS = 0.05


@dataclass
class Child:
    """A started service: its process (the group leader) and the file it writes to."""

    name: str
    process: subprocess.Popen[bytes]
    output: Path  # stdout and stderr

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None


def start_child(
    name: str,
    argv: Sequence[str],
    *,
    output: Path,
    env: Mapping[str, str],
    cwd: Path | None = None,
) -> Child:
    """Start ``argv`` in a new session, stdout and stderr appended to ``output``."""
    output.parent.mkdir(parents=True, exist_ok=True)
    with open(output, "ab") as sink:
        process = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=dict(env),
            cwd=cwd,
            start_new_session=True,
        )
    return Child(name=name, process=process, output=output)


def _process_table() -> dict[int, tuple[str, int, int]]:
    """pid → (state, parent pid, process group) of every process, from /proc."""
    table = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:  # exited while we looked
            continue
        # "pid (comm) state ppid pgrp …": comm may hold spaces and parentheses.
        fields = stat[stat.rindex(")") + 2 :].split()
        table[int(entry.name)] = (fields[0], int(fields[1]), int(fields[2]))
    return table


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes of process group ``pgid``."""
    return [
        pid for pid, (state, _, group) in _process_table().items() if group == pgid and state != "Z"
    ]


def descendants(pid: int) -> list[int]:
    """Live descendants of ``pid``, also those that left its process group (``setsid``)."""
    table = _process_table()
    children: dict[int, list[int]] = {}
    for child, (_, parent, _) in table.items():
        children.setdefault(parent, []).append(child)
    found, todo = [], list(children.get(pid, []))
    while todo:
        current = todo.pop()
        if table[current][0] != "Z":
            found.append(current)
        todo.extend(children.get(current, []))
    return found


def processes_naming(folder: Path) -> list[int]:
    """Live processes whose command line names a path inside ``folder``."""
    found = []
    needle = f"{folder}/".encode()  # not /tmp/x2 for /tmp/x
    for pid, (state, _, _) in _process_table().items():
        if pid == os.getpid() or state == "Z":
            continue
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if needle in cmdline:
            found.append(pid)
    return found


def stop_children(children: Sequence[Child], *, grace_seconds: float = 10.0) -> list[str]:
    """SIGTERM every child's group at once, SIGKILL what is left after ``grace_seconds``,
    and return once nothing of them is left: no member of their groups, none of their
    descendants (which may have left the group, as Erlang's helpers do), every leader reaped.

    Returns what had to be killed (``"cinder-volume (pid 123)"``), for the caller's report.
    """
    tracked = {child.pid: set(descendants(child.pid)) for child in children}
    for child in children:
        _signal_group(child.pid, signal.SIGTERM)
    _wait_until_gone(children, tracked, time.monotonic() + grace_seconds)
    killed = []
    for child in children:
        left = set(group_members(child.pid)) | {p for p in tracked[child.pid] if _alive(p)}
        if left:
            killed.append(f"{child.name} (pids {sorted(left)})")
            _signal_group(child.pid, signal.SIGKILL)
            for pid in left:
                _signal(pid, signal.SIGKILL)
    # SIGKILL cannot be refused; what remains is the kernel tearing processes down.
    if not _wait_until_gone(children, tracked, time.monotonic() + 30):
        raise RuntimeError(f"processes of {[c.name for c in children]} survived SIGKILL")
    for child in children:
        child.process.wait()
    return killed


def kill_pids(pids: Sequence[int]) -> None:
    """SIGKILL each of ``pids`` (found by :func:`processes_naming`) and wait for it."""
    for pid in pids:
        _signal(pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while any(_alive(pid) for pid in pids):
        if time.monotonic() > deadline:
            raise RuntimeError(f"processes survived SIGKILL: {[p for p in pids if _alive(p)]}")
        threading.Event().wait(POLL_SECONDS)


def _wait_until_gone(
    children: Sequence[Child], tracked: dict[int, set[int]], deadline: float
) -> bool:
    while True:
        for child in children:
            child.process.poll()  # reap a leader that exited (our child: nobody else will)
        if not any(
            group_members(child.pid) or any(_alive(p) for p in tracked[child.pid])
            for child in children
        ):
            return True
        if time.monotonic() > deadline:
            return False
        threading.Event().wait(POLL_SECONDS)


def _signal_group(pgid: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):  # the whole group is gone already
        os.killpg(pgid, signum)


def _signal(pid: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"
