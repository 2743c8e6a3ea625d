"""pytest fixtures for tests that drive the real Claude Code CLI (load with `pytest_plugins`)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from .claude_cli import LATEST, PINNED, ensure_claude, make_git_repo

CLI_VERSIONS = (PINNED, LATEST)

NO_NPM = (
    "npm is not installed: the Claude Code CLI tests install @anthropic-ai/claude-code with it. "
    "Install Node.js and npm (Debian: `apt-get install -y nodejs npm`) and run the tests again."
)


@pytest.fixture(scope="session", params=CLI_VERSIONS, ids=[f"claude-{version}" for version in CLI_VERSIONS])
def claude_exe(request: pytest.FixtureRequest) -> Path:
    """The Claude Code executable, once per version; skips without npm, except under CI, where it fails."""
    if shutil.which("npm") is None:
        if os.environ.get("CI"):
            pytest.fail(NO_NPM)
        pytest.skip(NO_NPM)
    version: str = request.param
    return ensure_claude(version)


@pytest.fixture
def claude_workdir(tmp_path: Path) -> Path:
    """A throwaway git repository to run the CLI in."""
    return make_git_repo(tmp_path / "repo")
