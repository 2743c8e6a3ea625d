"""The events tools record: every run, every refusal, and every file write (with what it takes to revert it).

``tool.ran`` and ``tool.refused`` are the audit trail: one per call, in the order calls happened.
``tool.shell_cwd_changed`` keeps ``Bash``'s working folder from one call to the next, as the CLI's does.
``tool.file_written`` is the edit history: whichever tool wrote (``fs_write``, ``Edit``, ``Write``,
``edit_patch``, a revert), the event holds the file's bytes before the write (``None``: it did not exist), so
``workspace_edit_revert`` can put them back after a daemon restart, from the log alone.
"""

from __future__ import annotations

from typing import Any

import attrs

from lynkr.events.records import Event, event


@event("tool.ran")
@attrs.frozen(kw_only=True)
class ToolRan(Event):
    session_id: str
    tool_use_id: str
    tool: str  # the name the model called
    canonical: str  # the registered tool it resolved to ("" when unknown)
    arguments: dict[str, Any]  # secrets scrubbed
    result_bytes: int  # size of the content returned, after any cut
    output_bytes: int  # size of the content the tool produced, before any cut
    exit_code: int | None
    is_error: bool
    duration_ms: float


@event("tool.refused")
@attrs.frozen(kw_only=True)
class ToolRefused(Event):
    session_id: str
    tool_use_id: str
    tool: str
    canonical: str
    arguments: dict[str, Any]  # secrets scrubbed
    action: str  # the canonical action kind that was refused
    rule: str
    reason: str


@event("tool.file_written")
@attrs.frozen(kw_only=True)
class FileWritten(Event):
    """One write to one file in the workspace; ``before`` is enough to undo it."""

    edit_id: str
    session_id: str
    tool: str
    path: str  # relative to the workspace root, with forward slashes
    before: bytes | None  # None: the file did not exist
    after_sha256: str | None  # None: the write deleted the file
    reverts: str | None = None  # the edit_id this write undid, when it is a revert


@event("tool.shell_cwd_changed")
@attrs.frozen(kw_only=True)
class ShellCwdChanged(Event):
    """A session's ``Bash`` calls now start in ``cwd`` (relative to the workspace root, ``.`` for the root)."""

    session_id: str
    cwd: str
