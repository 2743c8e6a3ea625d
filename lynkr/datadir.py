"""The data folder: where the event log lives, and the lock that keeps one daemon per folder.

Kept apart from the daemon so that the read-only commands (``log``, ``replay``) start without importing the
server stack.
"""

from __future__ import annotations

import fcntl
import os
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


@contextmanager
def daemon_lock(data_dir: Path) -> Iterator[IO[str]]:
    """Hold an exclusive lock on the data folder for as long as the daemon runs."""
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
    if not path.exists():
        raise StartupError(f"no event log at {path}; start the daemon first, or set LYNKR_DATA_DIR to its data folder")
    return LmdbEventStore.open(path, readonly=True)
