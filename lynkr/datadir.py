"""The data folder: where the event log lives, and the lock that keeps one daemon per folder.

Kept apart from the daemon so that the read-only commands (``log``, ``replay``) start without importing the
server stack.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from lynkr.events.lmdb_store import LmdbEventStore

DAEMON_STREAM = "daemon"  # the log's stream for the daemon's own events; sessions have their own


class StartupError(Exception):
    """A problem that stops the daemon from starting; the message is one line naming the problem and the fix."""


def events_dir(data_dir: Path) -> Path:
    return data_dir / "events"


# `lynkr log compact` writes the new log beside the old one and swaps it in with renames (lynkr.sessions.compaction):
# a log being written is "events.compacting" (incomplete: thrown away), a finished one "events.compacted"
# (complete: swapped in).  Whoever holds the daemon lock finishes or cleans up a swap a crash interrupted.


def compacting_dir(data_dir: Path) -> Path:
    return data_dir / "events.compacting"


def compacted_dir(data_dir: Path) -> Path:
    return data_dir / "events.compacted"


def finish_interrupted_compaction(data_dir: Path) -> Path | None:
    """Complete a swap a crash interrupted, and drop a half-written copy; the caller holds the daemon lock.

    Returns where the log before compaction was put aside, when this finished a swap.
    """
    shutil.rmtree(compacting_dir(data_dir), ignore_errors=True)
    if compacted_dir(data_dir).is_dir():
        return swap_in_compacted(data_dir)
    return None


def swap_in_compacted(data_dir: Path) -> Path | None:
    """Put the finished ``events.compacted`` in place of ``events``; the old log goes aside, and its folder is
    returned (None when a crash had already moved it).  Each step is one rename, so a crash at any point leaves
    either the old log or the new one whole, and :func:`finish_interrupted_compaction` completes the rest."""
    current, compacted = events_dir(data_dir), compacted_dir(data_dir)
    aside: Path | None = None
    if current.exists():
        aside = data_dir / time.strftime("events.before-compaction-%Y%m%dT%H%M%S", time.gmtime())
        suffix = 1
        while aside.exists():
            aside = aside.with_name(f"{aside.name.split('~')[0]}~{suffix}")
            suffix += 1
        current.rename(aside)
        _sync_folder(data_dir)
    compacted.rename(current)
    _sync_folder(data_dir)
    return aside


def _sync_folder(folder: Path) -> None:
    """Make renames in ``folder`` durable before the next step depends on them."""
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


@contextmanager
def daemon_lock(data_dir: Path) -> Iterator[IO[str]]:
    """Hold an exclusive lock on the data folder for as long as the daemon (or a compaction) runs."""
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        handle = open(data_dir / "daemon.lock", "a+")
    except OSError as error:
        raise StartupError(
            f"cannot use the data folder {data_dir}: {error.strerror or error}; "
            f"make it writable or set LYNKR_DATA_DIR to a writable folder"
        ) from None
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            raise StartupError(
                f"another lynkr daemon (pid {holder}) is already using the data folder {data_dir}; "
                f"stop it first, or set LYNKR_DATA_DIR to another folder"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        # Only the lock's holder may touch the log's folders: finish a compaction a crash interrupted.
        finish_interrupted_compaction(data_dir)
        yield handle


def open_store(data_dir: Path, *, map_size: int) -> LmdbEventStore:
    try:
        return LmdbEventStore.open(events_dir(data_dir), map_size=map_size)
    except OSError as error:
        raise StartupError(
            f"cannot open the event log in {events_dir(data_dir)}: {error}; "
            f"make the folder writable or set LYNKR_DATA_DIR to another folder"
        ) from None


def open_log_readonly(data_dir: Path) -> LmdbEventStore:
    path = events_dir(data_dir)
    if not path.exists() and compacted_dir(data_dir).is_dir():
        path = compacted_dir(data_dir)  # a crash stopped a swap halfway: this is the whole new log
    if not path.exists():
        raise StartupError(f"no event log at {path}; start the daemon first, or set LYNKR_DATA_DIR to its data folder")
    return LmdbEventStore.open(path, readonly=True)
