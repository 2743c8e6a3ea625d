"""Running a command line: ``shell`` (lynkr's own tool) and the process handling ``Bash`` shares with it.

A command runs under ``bash -c`` (``sh -c`` where there is no bash) in its own session, so it leads a new
process group: on timeout the whole group is killed, grandchildren included, and once the command itself has
exited any background job it left behind is killed too, so nothing outlives the call.  Its environment is the
scrubbed one of the :class:`~lynkr.tools.base.ToolContext`; its stdin is empty.

``Bash`` keeps its working folder from one call to the next, as the CLI's does: the folder a command ends in is
recorded (``tool.shell_cwd_changed``, folded per session) and the next call starts there, unless it left the
workspace, in which case it starts at the root again and says so.  The policy judges a ``Bash`` line from that
same folder.

Output is limited *while it is read*: each stream keeps its first and last ``limit`` bytes and counts the
rest, so a command printing gigabytes costs a fixed amount of memory and still ends at its timeout.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from collections.abc import Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import trio

from lynkr.events.records import Event
from lynkr.tools.base import Action, Projection, Sandbox, ToolContext, ToolResult, ToolSpec
from lynkr.tools.cmdline import shell_actions
from lynkr.tools.events import ShellCwdChanged
from lynkr.tools.workspace import folder, relative

if TYPE_CHECKING:
    from lynkr.config import Config

MAX_TIMEOUT_MS = 600_000
READ_CHUNK = 65536
NO_OUTPUT = "(Bash completed with no output)"


def shell_argv(command: str) -> list[str]:
    shell = shutil.which("bash") or "/bin/sh"
    return [shell, "-c", command]


class _Capture:
    """One output stream: its first and last ``limit`` bytes, and how many bytes came in all."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.head = bytearray()
        self.tail = bytearray()
        self.total = 0

    def feed(self, chunk: bytes | bytearray) -> None:
        self.total += len(chunk)
        room = self.limit - len(self.head)
        if room > 0:
            self.head += chunk[:room]
            chunk = chunk[room:]
        if chunk:
            self.tail += chunk
            if len(self.tail) > self.limit:
                del self.tail[: len(self.tail) - self.limit]

    def text(self) -> str:
        omitted = self.total - len(self.head) - len(self.tail)
        if omitted <= 0:
            return (bytes(self.head) + bytes(self.tail)).decode(errors="replace")
        return (
            self.head.decode(errors="replace")
            + f"\n[... {omitted} bytes of output omitted ...]\n"
            + self.tail.decode(errors="replace")
        )


@attrs.frozen(kw_only=True)
class Completed:
    exit_code: int | None  # None when the command was killed at its timeout
    stdout: str
    stderr: str
    timed_out: bool


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


async def _kill_on_cancel(process: trio.Process) -> None:
    _kill_group(process.pid)


async def _drain(stream: trio.abc.ReceiveStream | None, capture: _Capture) -> None:
    if stream is None:
        return
    async with stream:
        while chunk := await stream.receive_some(READ_CHUNK):
            capture.feed(chunk)


async def run_command(
    command: str,
    *,
    cwd: Path,
    environ: Mapping[str, str],
    timeout_s: float,
    limit_bytes: int,
    sandbox: Sandbox | None = None,
    writable: Sequence[str] = (),
) -> Completed:
    """Run ``command`` (in ``sandbox`` when given, with ``writable`` paths besides the workspace); never raises
    for the command's own failures (they are in the exit code and stderr)."""
    argv = shell_argv(command)
    if sandbox is not None:
        argv = sandbox(argv, environ, cwd, writable)
    out, err = _Capture(limit_bytes), _Capture(limit_bytes)
    exit_code: int | None = None
    with trio.move_on_after(timeout_s) as deadline:
        async with trio.open_nursery() as nursery:
            process: trio.Process = await nursery.start(
                partial(
                    trio.run_process,
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    cwd=str(cwd),
                    env=dict(environ),
                    check=False,
                    start_new_session=True,
                    deliver_cancel=_kill_on_cancel,
                )
            )
            nursery.start_soon(_drain, process.stdout, out)
            nursery.start_soon(_drain, process.stderr, err)
            exit_code = await process.wait()
            # Background jobs it started would hold the pipes open (and outlive the call): end them.
            _kill_group(process.pid)
    timed_out = deadline.cancelled_caught
    return Completed(
        exit_code=None if timed_out else exit_code, stdout=out.text(), stderr=err.text(), timed_out=timed_out
    )


def format_completed(completed: Completed, *, timeout_s: float) -> ToolResult:
    """The result as the CLI's Bash shapes it: ``Exit code N`` first on failure, stdout then stderr."""
    output = "\n".join(part for part in (completed.stdout.rstrip("\n"), completed.stderr.rstrip("\n")) if part)
    if completed.timed_out:
        note = f"Command timed out after {timeout_s:g}s; lynkr killed it and every process it started"
        return ToolResult(content="\n".join(p for p in (note, output) if p), is_error=True, exit_code=None)
    code = completed.exit_code
    if code:
        # A negative code is a signal (-9: killed); report it the way a shell does (128 + signal).
        shown = 128 - code if code < 0 else code
        return ToolResult(content="\n".join(p for p in (f"Exit code {shown}", output) if p), is_error=True, exit_code=code)
    return ToolResult(content=output or NO_OUTPUT, is_error=False, exit_code=0)


def timeout_of(arguments: Mapping[str, Any], key: str, default_ms: int) -> float:
    raw = arguments.get(key)
    milliseconds = default_ms if raw is None else int(raw)
    return min(max(milliseconds, 1), MAX_TIMEOUT_MS) / 1000


@attrs.frozen
class ShellTool:
    """``shell``: run a command line in the workspace, with a timeout, output limits and a scrubbed environment."""

    spec: ToolSpec = ToolSpec(
        name="shell",
        kinds=("shell",),
        description=(
            "Run a shell command line (bash) in the workspace and return its exit code, stdout and stderr. "
            "Runs with a timeout (whole process group killed when it passes), output limits and an environment "
            "without credentials."
        ),
        input_schema={
            "type": "object",
            "properties": {
                "command": {"type": "string", "description": "The command line to run."},
                "timeout_ms": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": MAX_TIMEOUT_MS,
                    "description": "Timeout in milliseconds (default: LYNKR_SHELL_TIMEOUT_MS).",
                },
                "cwd": {"type": "string", "description": "Folder to run in, inside the workspace (default: its root)."},
            },
            "required": ["command"],
            "additionalProperties": False,
        },
    )

    def actions(self, arguments: Mapping[str, Any]) -> Sequence[Action]:
        return shell_actions(str(arguments["command"]), cwd=arguments.get("cwd"))

    async def run(self, arguments: Mapping[str, Any], context: ToolContext) -> ToolResult:
        timeout_s = timeout_of(arguments, "timeout_ms", context.settings.shell_timeout_ms)
        completed = await run_command(
            str(arguments["command"]),
            cwd=folder(context, arguments.get("cwd"), name="cwd"),
            environ=context.environ,
            timeout_s=timeout_s,
            limit_bytes=context.settings.output_limit_bytes,
            sandbox=context.sandbox,
        )
        return format_completed(completed, timeout_s=timeout_s)


SHELL_CWD = "shell_cwd"


def bash_cwd(context: ToolContext) -> Path:
    """Where this session's next ``Bash`` call starts: its last folder, if that is still a folder inside."""
    recorded = context.state.parts.get(SHELL_CWD, {}).get(context.session_id)
    if recorded is None:
        return context.workspace
    folder = (context.workspace / recorded).resolve()
    inside_workspace = folder == context.workspace or context.workspace in folder.parents
    return folder if inside_workspace and folder.is_dir() else context.workspace


def follow_cwd(result: ToolResult, context: ToolContext, start: Path, ended_in: str) -> ToolResult:
    if not ended_in:  # the command exited before the trailer ran (exit, a timeout): the folder stays
        return result
    folder = Path(ended_in)
    if folder != context.workspace and context.workspace not in folder.parents:
        note = f"Shell cwd was reset to {context.workspace}"
        content = f"{result.content}\n{note}" if isinstance(result.content, str) else result.content
        event = ShellCwdChanged(session_id=context.session_id, cwd=".")
        return attrs.evolve(result, content=content, events=(*result.events, event))
    if folder == start:
        return result
    event = ShellCwdChanged(session_id=context.session_id, cwd=relative(context.workspace, folder))
    return attrs.evolve(result, events=(*result.events, event))


def _apply_cwd(cwds: Any, event: Event) -> Any:
    if isinstance(event, ShellCwdChanged):
        return {**cwds, event.session_id: event.cwd}
    return cwds


CWD_PROJECTION = Projection(name=SHELL_CWD, initial=dict, apply=_apply_cwd)


def tools(config: Config) -> list[ShellTool]:
    return [ShellTool()]


PROJECTIONS: tuple[()] = ()
