"""Every write to the workspace, by any tool, goes through :func:`write_file` and comes back as an event.

The event (:class:`~lynkr.tools.events.FileWritten`) carries the bytes the file held before (or that it did
not exist), so an edit can be reverted from the log alone.  The ``edits`` projection folds those events into
the history ``workspace_edit_history`` lists and ``workspace_edit_revert`` undoes.

These functions block (they touch the disk); tools call them through ``trio.to_thread.run_sync``.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path
from typing import Any

import attrs
import trio

from lynkr.events.records import Event
from lynkr.tools.base import Projection, ToolContext, ToolResult
from lynkr.tools.events import FileWritten
from lynkr.tools.workspace import relative

EDITS = "edits"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_before(path: Path) -> bytes | None:
    """What the file holds now, or None when there is no file."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def write_file(
    workspace: Path,
    path: Path,
    data: bytes | None,
    *,
    tool: str,
    session_id: str,
    before: bytes | None = None,
    known_before: bool = False,
    reverts: str | None = None,
) -> FileWritten:
    """Write ``data`` to the resolved ``path`` (None deletes it) and describe the write for the log.

    ``before`` may be passed (with ``known_before``) when the caller already read the file, so it is not read
    twice.  Parent folders are created as needed.  The file's permission bits are kept.
    """
    if not known_before:
        before = read_before(path)
    if data is None:
        path.unlink(missing_ok=True)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_keeping_mode(path, data)
    return FileWritten(
        edit_id=uuid.uuid4().hex[:12],
        session_id=session_id,
        tool=tool,
        path=relative(workspace, path),
        before=before,
        after_sha256=None if data is None else sha256(data),
        reverts=reverts,
    )


def _write_keeping_mode(path: Path, data: bytes) -> None:
    # Written in place (not renamed over) so hard links, ownership and permissions stay as they were.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


async def record_write(
    context: ToolContext, path: Path, data: bytes, *, tool: str, before: bytes | None
) -> ToolResult:
    """Write ``data`` (in a worker thread) and return the ``tool.file_written`` event as the result's event."""
    written = await trio.to_thread.run_sync(
        lambda: write_file(
            context.workspace, path, data, tool=tool, session_id=context.session_id, before=before, known_before=True
        )
    )
    return ToolResult(content="", events=(written,))


@attrs.frozen
class EditHistory:
    """Every recorded write, oldest first."""

    writes: tuple[FileWritten, ...] = ()

    def find(self, edit_id: str) -> FileWritten | None:
        return next((write for write in self.writes if write.edit_id == edit_id), None)

    def reverted(self, edit_id: str) -> bool:
        return any(write.reverts == edit_id for write in self.writes)


def _apply(history: Any, event: Event) -> Any:
    if isinstance(event, FileWritten):
        return EditHistory((*history.writes, event))
    return history


PROJECTION = Projection(name=EDITS, initial=EditHistory, apply=_apply)
