"""The real Claude Code CLI, installed once per version from npm and run headless against a base URL.

The npm package pulls its ~245 MB native executable through a platform package
(`@anthropic-ai/claude-code-linux-x64`); a postinstall script links it over the `bin/claude.exe` placeholder.
When install scripts did not run (npm 11 may skip them), the platform package's `claude` is used directly.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import pygit2
import trio

PACKAGE = "@anthropic-ai/claude-code"
PINNED = "2.1.197"
LATEST = "latest"

# The placeholder `bin/claude.exe` is a small script; the real executable is hundreds of megabytes.
_NATIVE_MIN_BYTES = 10_000_000
_ELF_MAGIC = b"\x7fELF"


class ClaudeInstallError(RuntimeError):
    """npm could not provide a working Claude Code executable."""


class ClaudeTimeout(RuntimeError):
    """The CLI did not finish in time; the message holds what it had printed."""


@attrs.frozen(kw_only=True)
class ClaudeResult:
    returncode: int
    stdout: str
    stderr: str
    json: Any
    elapsed: float

    @property
    def result(self) -> str | None:
        """The `result` field of the JSON output: the final text, or the error message."""
        value = self.json.get("result") if isinstance(self.json, dict) else None
        return value if isinstance(value, str) else None

    @property
    def is_error(self) -> bool:
        return self.returncode != 0 or not isinstance(self.json, dict) or bool(self.json.get("is_error"))


def cache_folder() -> Path:
    """Where CLI versions are installed: `$LYNKR_TEST_CACHE/claude-code` or `~/.cache/lynkr-tests/claude-code`."""
    base = os.environ.get("LYNKR_TEST_CACHE")
    root = Path(base) if base else Path.home() / ".cache" / "lynkr-tests"
    return root / "claude-code"


def resolve_version(version: str) -> str:
    """A concrete version number; "latest" is asked of the npm registry."""
    if version != LATEST:
        return version
    completed = _npm("view", f"{PACKAGE}@latest", "version")
    resolved = completed.stdout.strip().splitlines()[-1].strip()
    if not resolved:
        raise ClaudeInstallError(f"npm view {PACKAGE} gave no version")
    return resolved


def ensure_claude(version: str) -> Path:
    """The executable of Claude Code `version` ("latest" or e.g. PINNED), installing it on first use.

    Safe to call from parallel test runs: installs are serialised by a lock file and made atomic by renaming.
    """
    concrete = resolve_version(version)
    folder = cache_folder() / concrete
    folder.parent.mkdir(parents=True, exist_ok=True)
    if pygit2.discover_repository(str(folder.parent)) is not None:
        # npm and the CLI both behave differently inside a git work tree; keep the install out of any.
        raise ClaudeInstallError(f"{folder.parent} is inside a git work tree; set LYNKR_TEST_CACHE elsewhere")
    with open(folder.parent / f"{concrete}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        executable = find_executable(folder)
        if executable is None:
            _install(concrete, folder)
            executable = find_executable(folder)
            if executable is None:
                raise ClaudeInstallError(f"no native claude executable under {folder} after npm install")
        _check_version(executable, concrete)
    return executable


def find_executable(folder: Path) -> Path | None:
    """The installed native executable: `bin/claude.exe` if the postinstall linked it, else the platform one."""
    scope = folder / "node_modules" / "@anthropic-ai"
    candidates = [scope / "claude-code" / "bin" / "claude.exe", *sorted(scope.glob("claude-code-linux-*/claude"))]
    return next((path for path in candidates if _is_native(path)), None)


def _is_native(path: Path) -> bool:
    if not path.is_file() or path.stat().st_size < _NATIVE_MIN_BYTES:
        return False
    with path.open("rb") as file:
        return file.read(4) == _ELF_MAGIC


def _install(version: str, folder: Path) -> None:
    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    _npm(
        "install",
        "--prefix",
        str(partial),
        "--no-save",
        "--no-package-lock",
        "--no-audit",
        "--no-fund",
        "--loglevel=error",
        f"{PACKAGE}@{version}",
    )
    shutil.rmtree(folder, ignore_errors=True)
    partial.rename(folder)


def _npm(*args: str) -> subprocess.CompletedProcess[str]:
    npm = shutil.which("npm")
    if npm is None:
        raise ClaudeInstallError("npm is not installed")
    completed = subprocess.run(
        [npm, *args], capture_output=True, text=True, timeout=900, check=False, stdin=subprocess.DEVNULL
    )
    if completed.returncode != 0:
        raise ClaudeInstallError(f"npm {' '.join(args)} failed ({completed.returncode}):\n{completed.stderr}")
    return completed


def _check_version(executable: Path, version: str) -> None:
    with tempfile.TemporaryDirectory(prefix="lynkr-claude-home-") as home:
        env = claude_environment(home=Path(home), base_url="http://127.0.0.1:9", api_key="unused")
        completed = subprocess.run(
            [str(executable), "--version"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    if version not in completed.stdout:
        raise ClaudeInstallError(f"{executable} --version said {completed.stdout!r}{completed.stderr!r}, not {version}")


def claude_environment(
    *, home: Path, base_url: str, api_key: str, extra_env: Mapping[str, str | None] | None = None
) -> dict[str, str]:
    """A clean environment: nothing from the caller's ANTHROPIC_* / CLAUDE_* settings leaks into the run.

    `extra_env` adds or overrides variables; a value of None removes one (e.g. ANTHROPIC_API_KEY).
    """
    env = {name: os.environ[name] for name in ("PATH", "LANG", "TMPDIR") if name in os.environ}
    env.update(
        HOME=str(home),
        ANTHROPIC_BASE_URL=base_url,
        ANTHROPIC_API_KEY=api_key,
        CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1",
        DISABLE_TELEMETRY="1",
        DISABLE_AUTOUPDATER="1",
        CLAUDE_CODE_MAX_RETRIES="2",
        # --dangerously-skip-permissions is refused for root outside a sandbox.
        IS_SANDBOX="1",
    )
    for name, value in (extra_env or {}).items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def make_git_repo(path: Path) -> Path:
    """A throwaway git repository with one commit, for the CLI's working directory."""
    path.mkdir(parents=True, exist_ok=True)
    repo = pygit2.init_repository(str(path))
    (path / "README.md").write_text("A scratch repository for a Claude Code test run.\n")
    repo.index.add("README.md")
    repo.index.write()
    signature = pygit2.Signature("lynkr tests", "tests@lynkr.invalid")
    repo.create_commit("HEAD", signature, signature, "initial commit", repo.index.write_tree(), [])
    return path


async def run_claude(
    exe: Path,
    *,
    base_url: str,
    prompt: str,
    cwd: Path,
    extra_env: Mapping[str, str | None] | None = None,
    args: Sequence[str] = (),
    timeout: float = 90,
    api_key: str = "sk-ant-lynkr-test",
) -> ClaudeResult:
    """Run `claude -p PROMPT --output-format json --dangerously-skip-permissions ARGS` in `cwd` with a fresh HOME.

    Raises ClaudeTimeout (with the output so far) when it runs longer than `timeout` seconds.
    """
    command = [str(exe), "-p", prompt, "--output-format", "json", "--dangerously-skip-permissions", *args]
    with (
        tempfile.TemporaryDirectory(prefix="lynkr-claude-home-") as home,
        tempfile.TemporaryFile() as stdout,
        tempfile.TemporaryFile() as stderr,
    ):
        env = claude_environment(home=Path(home), base_url=base_url, api_key=api_key, extra_env=extra_env)
        started = time.monotonic()
        try:
            with trio.fail_after(timeout):
                process = await trio.run_process(
                    command,
                    cwd=cwd,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=stdout,
                    stderr=stderr,
                    check=False,
                    # Its own process group, so that a timeout also ends the shells its tools started.
                    start_new_session=True,
                    deliver_cancel=_kill_process_group,
                )
        except trio.TooSlowError:
            raise ClaudeTimeout(
                f"claude ran longer than {timeout} s\nstdout: {_read(stdout)}\nstderr: {_read(stderr)}"
            ) from None
        elapsed = time.monotonic() - started
        out, err = _read(stdout), _read(stderr)
    try:
        parsed: Any = json.loads(out)
    except ValueError:
        parsed = None
    return ClaudeResult(returncode=process.returncode, stdout=out, stderr=err, json=parsed, elapsed=elapsed)


async def _kill_process_group(process: trio.Process) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _read(file: Any) -> str:
    file.seek(0)
    data: bytes = file.read()
    return data.decode(errors="replace")
