"""Running an MCP server inside bubblewrap: no network unless allowed, a read-only root, the workspace writable.

bubblewrap needs user (or, as root, mount) namespaces; some machines and containers forbid them.  So the runtime
is probed once by running ``true`` inside the same kind of sandbox; when that fails lynkr says why at start-up and
refuses to start sandboxed servers: it never runs one unsandboxed without saying so.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

import attrs

PROBE_TIMEOUT_S = 5.0


@functools.cache
def _probe() -> tuple[str | None, str]:
    """``(path of bwrap, "")`` when it works here, else ``(None, why not)``."""
    path = shutil.which("bwrap")
    if path is None:
        return None, "bubblewrap (bwrap) is not installed; on Debian: apt-get install bubblewrap"
    try:
        done = subprocess.run(
            [path, *_base_arguments(allow_network=False), "--", "true"],
            capture_output=True,
            timeout=PROBE_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"bwrap could not run: {exc}"
    if done.returncode != 0:
        detail = done.stderr.decode(errors="replace").strip().splitlines()
        return None, "bwrap cannot create its namespaces here: " + (detail[-1] if detail else f"exit {done.returncode}")
    return path, ""


def find_runtime() -> str | None:
    return _probe()[0]


def why_unavailable() -> str:
    return _probe()[1] or "bubblewrap works"


def _base_arguments(*, allow_network: bool) -> list[str]:
    arguments = [
        "--ro-bind", "/", "/",
        "--dev", "/dev",
        "--proc", "/proc",
        "--tmpfs", "/tmp",
        "--unshare-all",
        "--die-with-parent",
        "--new-session",
        "--clearenv",
    ]  # fmt: skip
    if allow_network:
        arguments.append("--share-net")
    return arguments


def _under_tmp(argv: Sequence[str]) -> list[Path]:
    """The top-level folders under /tmp that the command's program lives in (its virtualenv, say)."""
    program = shutil.which(argv[0]) if argv else None
    if program is None:
        return []
    found: list[Path] = []
    for candidate in (Path(program), Path(program).resolve()):
        parts = candidate.parts
        if len(parts) > 2 and parts[1] == "tmp":
            folder = Path("/", parts[1], parts[2])
            if folder not in found:
                found.append(folder)
    return found


def wrap(
    runtime: str,
    argv: Sequence[str],
    *,
    workspace: Path,
    env: Mapping[str, str],
    allow_network: bool,
    writable: Sequence[str] = (),
    cwd: Path | None = None,
) -> tuple[str, list[str]]:
    """The command and arguments that run ``argv`` sandboxed, with exactly ``env`` as its environment."""
    arguments = _base_arguments(allow_network=allow_network)
    # /tmp is a fresh tmpfs inside; a server installed under /tmp (a virtualenv there) must stay visible, read-only.
    for folder in _under_tmp(argv):
        arguments += ["--ro-bind", str(folder), str(folder)]
    arguments += ["--bind", str(workspace), str(workspace), "--chdir", str(cwd or workspace)]
    for extra in writable:
        arguments += ["--bind", extra, extra]
    for name, value in env.items():
        arguments += ["--setenv", name, value]
    return runtime, [*arguments, "--", *argv]


class SandboxUnavailable(OSError):
    """MCP_SANDBOX_ENABLED is set, but no sandbox runtime works here: commands are refused, never run bare."""


@attrs.frozen(kw_only=True)
class ToolSandbox:
    """The sandbox shell and test commands run in when MCP_SANDBOX_ENABLED is set (see ``ToolContext.sandbox``)."""

    workspace: Path
    allow_network: bool

    def __call__(
        self, argv: Sequence[str], environ: Mapping[str, str], cwd: Path, writable: Sequence[str] = ()
    ) -> list[str]:
        runtime = find_runtime()
        if runtime is None:
            raise SandboxUnavailable(
                f"MCP_SANDBOX_ENABLED is set but no sandbox runs here ({why_unavailable()}); the command was not "
                "run. Install bubblewrap, or unset MCP_SANDBOX_ENABLED to run commands unsandboxed"
            )
        command, arguments = wrap(
            runtime,
            argv,
            workspace=self.workspace,
            env=environ,
            allow_network=self.allow_network,
            writable=writable,
            cwd=cwd,
        )
        return [command, *arguments]
