"""A task tracker kept as events: ``workspace_tasks_list`` and ``workspace_task_{get,create,update,set_status,delete}``.

The tools never keep state of their own.  Each change is returned as an event; the ``tasks`` projection folds
those events into a :class:`TaskBoard`, so the board after a restart is the fold of the log, exactly.
Task ids are ``T1``, ``T2``, ... from a counter in the board that deletion never rewinds, so an id is never
reused for a different task.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from lynkr.config import Config
from lynkr.events.records import Event
from lynkr.tools.base import Action, Projection, Tool, ToolContext, ToolInputError, ToolResult, ToolSpec
from lynkr.tools.declared import Arguments, DeclaredTool, error, required_text, schema, text_argument
from lynkr.tools.task_events import TaskCreated, TaskDeleted, TaskStatusSet, TaskUpdated

STATUSES = ("todo", "in_progress", "done", "blocked")
PART = "tasks"


@attrs.frozen(kw_only=True)
class Task:
    task_id: str
    title: str
    description: str
    status: str
    created_at: float
    updated_at: float

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.task_id,
            "title": self.title,
            "description": self.description,
            "status": self.status,
            "created_at": _iso(self.created_at),
            "updated_at": _iso(self.updated_at),
        }


@attrs.frozen(kw_only=True)
class TaskBoard:
    tasks: Mapping[str, Task] = attrs.field(factory=dict)  # in creation order
    created: int = 0  # tasks ever created: the next id is T{created + 1}

    def next_id(self) -> str:
        return f"T{self.created + 1}"


def apply(board: TaskBoard, event: Event) -> TaskBoard:
    """The ``tasks`` fold.  Events about a task that no longer exists change nothing."""
    if isinstance(event, TaskCreated):
        task = Task(
            task_id=event.task_id,
            title=event.title,
            description=event.description,
            status=event.status,
            created_at=event.at,
            updated_at=event.at,
        )
        return TaskBoard(tasks={**board.tasks, task.task_id: task}, created=board.created + 1)
    if isinstance(event, (TaskUpdated, TaskStatusSet, TaskDeleted)):
        current = board.tasks.get(event.task_id)
        if current is None:
            return board
        tasks = dict(board.tasks)
        if isinstance(event, TaskDeleted):
            del tasks[event.task_id]
        elif isinstance(event, TaskUpdated):
            tasks[event.task_id] = attrs.evolve(
                current,
                title=current.title if event.title is None else event.title,
                description=current.description if event.description is None else event.description,
                updated_at=event.at,
            )
        else:
            tasks[event.task_id] = attrs.evolve(current, status=event.status, updated_at=event.at)
        return TaskBoard(tasks=tasks, created=board.created)
    return board


PROJECTIONS: tuple[Projection, ...] = (Projection(name=PART, initial=TaskBoard, apply=apply),)


def tools(config: Config) -> list[Tool]:
    return [
        _tool("workspace_tasks_list", "List the workspace's tasks, optionally only those with one status.",
              schema({"status": _STATUS_SCHEMA}), _list),
        _tool("workspace_task_get", "Show one task by id.", schema({"id": _ID_SCHEMA}, ["id"]), _get),
        _tool(
            "workspace_task_create",
            "Create a task (status todo unless given). Returns its id.",
            schema({"title": {"type": "string"}, "description": {"type": "string"}, "status": _STATUS_SCHEMA},
                   ["title"]),
            _create,
        ),
        _tool(
            "workspace_task_update",
            "Change a task's title and/or description.",
            schema({"id": _ID_SCHEMA, "title": {"type": "string"}, "description": {"type": "string"}}, ["id"]),
            _update,
        ),
        _tool(
            "workspace_task_set_status",
            "Set a task's status: todo, in_progress, done or blocked.",
            schema({"id": _ID_SCHEMA, "status": _STATUS_SCHEMA}, ["id", "status"]),
            _set_status,
        ),
        _tool("workspace_task_delete", "Delete a task.", schema({"id": _ID_SCHEMA}, ["id"]), _delete),
    ]


_STATUS_SCHEMA = {"type": "string", "enum": list(STATUSES)}
_ID_SCHEMA = {"type": "string", "description": "A task id such as T3."}


def _tool(name: str, description: str, input_schema: dict[str, Any], run: Any) -> DeclaredTool:
    return DeclaredTool(
        spec=ToolSpec(name=name, description=description, input_schema=input_schema),
        describe=_task_action,
        implementation=run,
    )


def _task_action(arguments: Arguments) -> Sequence[Action]:
    return [Action(kind="task", detail={"id": arguments.get("id")})]


async def _list(arguments: Arguments, context: ToolContext) -> ToolResult:
    status = _status(arguments, required=False)
    board: TaskBoard = context.state.part(PART)
    chosen = [task for task in board.tasks.values() if status is None or task.status == status]
    if not chosen:
        return ToolResult(content="No tasks." if status is None else f"No tasks with status {status}.")
    lines = [f"{task.task_id} [{task.status}] {task.title}" for task in chosen]
    return ToolResult(content="\n".join(lines))


async def _get(arguments: Arguments, context: ToolContext) -> ToolResult:
    task = _find(arguments, context)
    if task is None:
        return _missing(arguments)
    return ToolResult(content=_render(task))


async def _create(arguments: Arguments, context: ToolContext) -> ToolResult:
    title = required_text(arguments, "title").strip()
    description = text_argument(arguments, "description") or ""
    status = _status(arguments, required=False) or "todo"
    board: TaskBoard = context.state.part(PART)
    task_id = board.next_id()
    created = TaskCreated(task_id=task_id, title=title, description=description, status=status, at=time.time())
    return ToolResult(content=f"Created {task_id} [{status}] {title}", events=(created,))


async def _update(arguments: Arguments, context: ToolContext) -> ToolResult:
    task = _find(arguments, context)
    if task is None:
        return _missing(arguments)
    title = text_argument(arguments, "title")
    description = text_argument(arguments, "description")
    if title is None and description is None:
        raise ToolInputError("give a new title, a new description, or both")
    if title is not None and not title.strip():
        raise ToolInputError("title must not be empty")
    updated = TaskUpdated(
        task_id=task.task_id, title=None if title is None else title.strip(), description=description, at=time.time()
    )
    return ToolResult(content=f"Updated {task.task_id}", events=(updated,))


async def _set_status(arguments: Arguments, context: ToolContext) -> ToolResult:
    task = _find(arguments, context)
    if task is None:
        return _missing(arguments)
    status = _status(arguments, required=True)
    assert status is not None
    changed = TaskStatusSet(task_id=task.task_id, status=status, at=time.time())
    return ToolResult(content=f"{task.task_id} is now {status} (was {task.status})", events=(changed,))


async def _delete(arguments: Arguments, context: ToolContext) -> ToolResult:
    task = _find(arguments, context)
    if task is None:
        return _missing(arguments)
    return ToolResult(content=f"Deleted {task.task_id}", events=(TaskDeleted(task_id=task.task_id, at=time.time()),))


def _find(arguments: Arguments, context: ToolContext) -> Task | None:
    task_id = required_text(arguments, "id").strip().upper()
    board: TaskBoard = context.state.part(PART)
    return board.tasks.get(task_id)


def _missing(arguments: Arguments) -> ToolResult:
    return error(f"no task {arguments.get('id')!r}; workspace_tasks_list shows the ids that exist")


def _status(arguments: Arguments, *, required: bool) -> str | None:
    status = required_text(arguments, "status") if required else text_argument(arguments, "status")
    if status is not None and status not in STATUSES:
        raise ToolInputError(f"status must be one of {', '.join(STATUSES)}, not {status!r}")
    return status


def _render(task: Task) -> str:
    fields = task.as_json()
    lines = [f"{fields['id']} [{fields['status']}] {fields['title']}"]
    if task.description:
        lines.append(task.description)
    lines.append(f"created {fields['created_at']}, updated {fields['updated_at']}")
    return "\n".join(lines)


def _iso(at: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))
