"""Process trees of workers: each worker heads its own, and it is killed whole.

A worker makes itself the leader of a new process group and, on Linux, a child
subreaper (``PR_SET_CHILD_SUBREAPER``, through ``prctl``). A process its plugin
starts that loses its parent — a double-forked daemon, say, which left the group
with ``setsid`` — is then re-parented to the worker instead of to init, so every
process the plugin started is a descendant of the worker. Elsewhere (or where the
kernel refuses) the worker runs as before and only its descendants and its group
can be found.

Killing a tree first freezes it: ``SIGSTOP`` to the root and every descendant,
listed again until no new process shows up, so nothing forks or slips away while
it is killed. Then every process of the tree, and the root's process group, gets
the signal at once: no orphan is left alive to be re-parented outside the tree.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys

import psutil

__all__ = ["kill_tree", "lead_own_tree"]

_PR_SET_CHILD_SUBREAPER = 36
# Listings of a frozen tree until it stops growing; the first one nearly always
# finds everything, a second confirms it.
_ROUNDS = 8
_GONE = (psutil.NoSuchProcess, psutil.AccessDenied, ProcessLookupError, PermissionError)


def lead_own_tree() -> bool:
    """Head a process group of one's own and adopt orphaned descendants.

    Returns whether this process is a child subreaper now (Linux only).
    """
    with contextlib.suppress(OSError):
        os.setpgid(0, 0)
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def _signal(process: psutil.Process, sig: int) -> None:
    with contextlib.suppress(*_GONE):
        process.send_signal(sig)


def _freeze(root: psutil.Process, *, include_root: bool) -> list[psutil.Process]:
    """Stop the tree under ``root``; every process of it but the root."""
    tree: dict[int, psutil.Process] = {}
    if include_root:
        _signal(root, signal.SIGSTOP)
    for _ in range(_ROUNDS):
        try:
            found = root.children(recursive=True)
        except _GONE:
            break
        fresh = [p for p in found if p.pid not in tree]
        if not fresh:
            break
        for process in fresh:
            tree[process.pid] = process
            _signal(process, signal.SIGSTOP)
    return list(tree.values())


def kill_tree(pid: int, sig: int = signal.SIGKILL, *, include_root: bool = True) -> None:
    """Signal ``pid``'s descendants, and ``pid`` with its process group if
    ``include_root`` (the group only when ``pid`` leads one other than ours)."""
    try:
        root = psutil.Process(pid)
    except _GONE:
        return
    tree = _freeze(root, include_root=include_root)
    for process in tree:
        _signal(process, sig)
    if include_root:
        with contextlib.suppress(OSError):
            if os.getpgid(pid) == pid and pid != os.getpgid(0):
                os.killpg(pid, sig)
        _signal(root, sig)
    if sig not in (signal.SIGKILL, signal.SIGSTOP):
        # A stopped process acts on its signal only once it runs again.
        for process in [*tree, *([root] if include_root else [])]:
            _signal(process, signal.SIGCONT)
