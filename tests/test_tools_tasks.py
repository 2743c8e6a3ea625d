"""The task tracker: every change is an event, and the board is the fold of those events."""

from __future__ import annotations

from pathlib import Path

import jsonschema
import pytest

from lynkr.tools import tasks
from lynkr.tools.base import ToolInputError, ToolState
from tests.conftest import make_config
from tests.tool_context import Bench, bench


def _bench(tmp_path: Path) -> Bench:
    config = make_config(tmp_path)
    return bench(config, tasks.tools(config), tasks.PROJECTIONS)


async def test_tasks_create_update_status_delete_fold_into_the_board(tmp_path: Path) -> None:
    b = _bench(tmp_path)
    assert await b.ok("workspace_tasks_list") == "No tasks."
    assert (await b.ok("workspace_task_create", {"title": "write parsers"})).startswith("Created T1 [todo]")
    await b.ok("workspace_task_create", {"title": "ship", "description": "tag and push", "status": "blocked"})
    await b.ok("workspace_task_update", {"id": "T1", "description": "pytest and node"})
    moved = await b.ok("workspace_task_set_status", {"id": "t1", "status": "in_progress"})
    assert "now in_progress (was todo)" in moved

    shown = await b.ok("workspace_task_get", {"id": "T1"})
    assert shown.splitlines()[:2] == ["T1 [in_progress] write parsers", "pytest and node"]
    assert await b.ok("workspace_tasks_list", {"status": "blocked"}) == "T2 [blocked] ship"

    await b.ok("workspace_task_delete", {"id": "T1"})
    assert await b.ok("workspace_tasks_list") == "T2 [blocked] ship"
    # A deleted id is never handed out again.
    assert (await b.ok("workspace_task_create", {"title": "third"})).startswith("Created T3")
    board: tasks.TaskBoard = b.state.part("tasks")
    assert list(board.tasks) == ["T2", "T3"]
    assert board.tasks["T2"].description == "tag and push"


async def test_rebuilding_from_the_same_events_gives_the_same_board(tmp_path: Path) -> None:
    b = _bench(tmp_path)
    for title in ("a", "b", "c"):
        await b.ok("workspace_task_create", {"title": title})
    await b.ok("workspace_task_set_status", {"id": "T2", "status": "done"})
    await b.ok("workspace_task_update", {"id": "T3", "title": "c, renamed"})
    await b.ok("workspace_task_delete", {"id": "T1"})

    rebuilt = ToolState.empty(tasks.PROJECTIONS)
    for event in b.events:
        rebuilt = rebuilt.apply(event)
    assert rebuilt.part("tasks") == b.state.part("tasks")
    # The events survive the log's round trip through their payloads.
    again = ToolState.empty(tasks.PROJECTIONS)
    for event in b.events:
        again = again.apply(type(event).from_payload(event.to_payload()))
    assert again.part("tasks") == b.state.part("tasks")


async def test_bad_task_input_is_a_clear_error(tmp_path: Path) -> None:
    b = _bench(tmp_path)
    assert "workspace_tasks_list shows the ids" in await b.fails("workspace_task_get", {"id": "T9"})
    await b.ok("workspace_task_create", {"title": "x"})
    bad = {"id": "T1", "status": "finished"}
    with pytest.raises(jsonschema.ValidationError):  # the worker's schema check stops it first ...
        await b.run("workspace_task_set_status", bad)
    with pytest.raises(ToolInputError, match="todo, in_progress, done, blocked"):  # ... and the tool itself too
        await b.tools["workspace_task_set_status"].run(bad, b.context())
    assert b.state.part("tasks").tasks["T1"].status == "todo"
