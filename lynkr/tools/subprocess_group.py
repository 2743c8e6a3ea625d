"""Run a command in its own process group, with a timeout that kills the whole group.

A test command or a ``git`` fallback may start children of its own (pytest-xdist workers, ``ssh``, a
credential helper).  Killing only the direct child would leave them running and holding the output pipe
open, so each command gets a new session and a timeout (or a cancelled turn) kills every process in it.
stdout and stderr are read as one stream, in the order the command wrote them, as a terminal would show.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import attrs
import trio

from lynkr.tools.base import Sandbox
from lynkr.tools.shell import shell_argv

# Output kept in memory per command: the start and the end, which is where test summaries and errors are.
KEEP_HEAD_BYTES = 256 * 1024
KEEP_TAIL_BYTES = 2 * 1024 * 1024


@attrs.frozen(kw_only=True)
class Finished:
    exit_code: int | None  # None when the timeout killed it
    output: str
    timed_out: bool
    duration_ms: float
    dropped_bytes: int  # output cut from the middle to stay within the memory bound


async def run_in_group(
    command: str | Sequence[str],
    *,
    cwd: Path,
    environ: Mapping[str, str],
    timeout_s: float,
    sandbox: Sandbox | None = None,
) -> Finished:
    """Run ``command`` (a shell line, or an argv; in ``sandbox`` when given) and collect its output; never raises
    for the command's failure."""
    started = time.monotonic()
    if sandbox is not None:
        command = sandbox(shell_argv(command) if isinstance(command, str) else command, environ, cwd)
    process = await trio.lowlevel.open_process(
        command if isinstance(command, str) else list(command),
        shell=isinstance(command, str),
        cwd=str(cwd),
        env=dict(environ),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    head = bytearray()
    tail = bytearray()
    dropped = 0
    killed = False
    deadline = trio.move_on_after(timeout_s)
    try:
        with deadline:
            assert process.stdout is not None
            async with process.stdout:
                while chunk := await process.stdout.receive_some(65536):
                    room = KEEP_HEAD_BYTES - len(head)
                    head += chunk[:room]
                    tail += chunk[room:] if room > 0 else chunk
                    if len(tail) > KEEP_TAIL_BYTES:
                        dropped += len(tail) - KEEP_TAIL_BYTES
                        del tail[: len(tail) - KEEP_TAIL_BYTES]
            await process.wait()
    finally:
        # Also after a timeout whose command exited while a child it left behind kept the pipe open.
        if process.returncode is None or deadline.cancelled_caught:
            killed = process.returncode is None
            _kill_group(process.pid)
            with trio.CancelScope(shield=True), trio.move_on_after(5):
                await process.wait()
    marker = f"\n[... {dropped} bytes of output cut from the middle ...]\n".encode() if dropped else b""
    output = bytes(head) + marker + bytes(tail)
    return Finished(
        exit_code=None if killed else process.returncode,
        output=output.decode("utf-8", errors="replace"),
        timed_out=deadline.cancelled_caught,
        duration_ms=(time.monotonic() - started) * 1000,
        dropped_bytes=dropped,
    )


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
