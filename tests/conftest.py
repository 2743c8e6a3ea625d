"""Shared fixtures: a real lynkr daemon in-process on a loopback port, with its own data folder."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path

import pygit2
import pytest
import trio

from lynkr.config import Config, load_config
from lynkr.daemon import Running, run_daemon

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


@asynccontextmanager
async def running_lynkr(config: Config) -> AsyncIterator[Running]:
    async with trio.open_nursery() as nursery:
        running: Running = await nursery.start(partial(run_daemon, config))
        try:
            yield running
        finally:
            running.stop.set()


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
