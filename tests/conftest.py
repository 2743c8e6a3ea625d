"""Shared fixtures: a real lynkr daemon in-process on a loopback port, with its own data folder."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

import attrs
import pygit2
import pytest
import trio

from lynkr.config import Config, load_config
from lynkr.daemon import Running, run_daemon
from lynkr.datadir import events_dir
from lynkr.events.catalog import RequestReceived
from lynkr.events.lmdb_store import LmdbEventStore
from lynkr.events.records import Event, Recorded

pytest_plugins = ["tests.fakes.cli_fixtures"]


def make_config(tmp_path: Path, env: Mapping[str, str] | None = None) -> Config:
    workspace = tmp_path / "workspace"
    workspace.mkdir(exist_ok=True)
    environ = {
        "PORT": "0",
        "LYNKR_HOST": "127.0.0.1",
        "WORKSPACE_ROOT": str(workspace),
        "LYNKR_DATA_DIR": str(tmp_path / "data"),
        "LYNKR_SHUTDOWN_GRACE_S": "2",
        **(env or {}),
    }
    return load_config(environ=environ, cwd=workspace)


def write_toml(tmp_path: Path, text: str) -> None:
    """A ``lynkr.toml`` in the workspace that ``make_config(tmp_path, ...)`` uses."""
    workspace = tmp_path / "workspace"
    workspace.mkdir(exist_ok=True)
    (workspace / "lynkr.toml").write_text(text)


@asynccontextmanager
async def running_lynkr(config: Config) -> AsyncIterator[Running]:
    async with trio.open_nursery() as nursery:
        running: Running = await nursery.start(partial(run_daemon, config))
        try:
            yield running
        finally:
            running.stop.set()


def recorded(data_dir: Path) -> list[Recorded]:
    """The log of a (stopped) daemon, oldest first; request bodies are joined while the log is open."""
    with LmdbEventStore.open(events_dir(data_dir), readonly=True) as store:
        return [
            attrs.evolve(record, event=record.event.whole()) if isinstance(record.event, RequestReceived) else record
            for record in store.read()
        ]


def recorded_events(data_dir: Path) -> list[Event]:
    return [record.event for record in recorded(data_dir)]


def sse_events(body: str) -> list[tuple[str, dict[str, Any]]]:
    """(event name, parsed data) for each SSE event of a whole response body."""
    events = []
    for frame in body.replace("\r\n", "\n").split("\n\n"):
        name, data = "message", ""
        for line in frame.split("\n"):
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data += line[5:].strip()
        if data:
            events.append((name, json.loads(data)))
    return events


def streamed_text(events: list[tuple[str, dict[str, Any]]]) -> str:
    return "".join(
        data["delta"].get("text", "")
        for name, data in events
        if name == "content_block_delta" and data["delta"]["type"] == "text_delta"
    )


def init_git_repo(path: Path) -> pygit2.Repository:
    path.mkdir(parents=True, exist_ok=True)
    repo = pygit2.init_repository(str(path))
    (path / "README.md").write_text("scratch repository for a test\n")
    repo.index.add("README.md")
    repo.index.write()
    signature = pygit2.Signature("lynkr tests", "tests@lynkr.invalid")
    repo.create_commit("HEAD", signature, signature, "initial", repo.index.write_tree(), [])
    return repo


@pytest.fixture
def lynkr_config(tmp_path: Path) -> Config:
    return make_config(tmp_path)
