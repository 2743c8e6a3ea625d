"""An example tool plugin: a shell tool under another name, an alias, and a policy rule.

``example_run`` runs a command line like ``shell`` does, under its own name.  Because it describes its calls
with the same canonical ``shell`` actions, lynkr's policy judges it exactly like ``Bash``: renaming a tool
gets around nothing.  ``example_sh`` is a plain alias of lynkr's ``shell``.  The rule
``example_no_lockfiles`` refuses writes to ``*.lock`` files, whichever tool would make them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs

from lynkr.tools.base import Action, Alias, Refusal, ToolContext, ToolResult, ToolSpec
from lynkr.tools.cmdline import shell_actions
from lynkr.tools.shell import format_completed, run_command

if TYPE_CHECKING:
    from lynkr.config import Config


@attrs.frozen
class ExampleRun:
    spec: ToolSpec = ToolSpec(
        name="example_run",
        family="plugin",
        kinds=("shell",),
        description="Run a command line in the workspace (an example plugin tool).",
        input_schema={
            "type": "object",
            "properties": {"line": {"type": "string"}},
            "required": ["line"],
            "additionalProperties": False,
        },
    )

    def actions(self, arguments: Mapping[str, Any]) -> Sequence[Action]:
        return shell_actions(str(arguments["line"]))

    async def run(self, arguments: Mapping[str, Any], context: ToolContext) -> ToolResult:
        completed = await run_command(
            str(arguments["line"]),
            cwd=context.workspace,
            environ=context.environ,
            timeout_s=30.0,
            limit_bytes=context.settings.output_limit_bytes,
        )
        return format_completed(completed, timeout_s=30.0)


@attrs.frozen
class NoLockfiles:
    name: str = "example_no_lockfiles"

    async def judge(self, action: Action, context: ToolContext) -> Refusal | None:
        if action.kind == "fs.write" and any(path.endswith(".lock") for path in action.paths):
            return Refusal(rule=self.name, reason="lock files are written by the package manager; run it instead")
        return None


def tools(config: Config) -> list[object]:
    return [ExampleRun(), Alias("example_sh", "shell")]


def rules(config: Config) -> list[object]:
    return [NoLockfiles()]
