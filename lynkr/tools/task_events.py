"""The task tracker's events.  ``at`` is the Unix time in seconds when the change was made."""

from __future__ import annotations

import attrs

from lynkr.events.records import Event, event


@event("task.created")
@attrs.frozen(kw_only=True)
class TaskCreated(Event):
    task_id: str
    title: str
    description: str
    status: str
    at: float


@event("task.updated")
@attrs.frozen(kw_only=True)
class TaskUpdated(Event):
    """Title and/or description changed; None leaves a field as it was."""

    task_id: str
    title: str | None
    description: str | None
    at: float


@event("task.status_set")
@attrs.frozen(kw_only=True)
class TaskStatusSet(Event):
    task_id: str
    status: str
    at: float


@event("task.deleted")
@attrs.frozen(kw_only=True)
class TaskDeleted(Event):
    task_id: str
    at: float
