"""Run lynkr's own tools directly, the way the tool worker will: a real ToolContext over a tmp workspace, and
the events each run returns folded into the state the next run sees."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import jsonschema

from lynkr.config import Config
from lynkr.events.records import Event
from lynkr.tools.base import Projection, Tool, ToolContext, ToolResult, ToolState
from lynkr.tools.interim_environ import scrubbed_environ


@attrs.define
class Bench:
    """A workspace, its tools by name, and the folded state; ``events`` is every event recorded so far."""

    config: Config
    workspace: Path
    tools: dict[str, Tool]
    state: ToolState
    summarize: Callable[[str], Awaitable[str]] | None = None
    events: list[Event] = attrs.field(factory=list)
    # What the tool worker hands tools; a test may put secrets in it to prove the tools scrub them again.
    environ: dict[str, str] = attrs.field(factory=lambda: scrubbed_environ(os.environ))

    def context(self) -> ToolContext:
        return ToolContext(
            workspace=self.workspace,
            environ=self.environ,
            state=self.state,
            settings=self.config.tools,
            session_id="test-session",
            summarize=self.summarize,
        )

    async def run(self, name: str, arguments: Mapping[str, Any] | None = None) -> ToolResult:
        tool = self.tools[name]
        # The tool worker validates every input against the tool's schema first; so do the tests, which keeps
        # each schema honest about the arguments its tool takes.
        jsonschema.validate(dict(arguments or {}), dict(tool.spec.input_schema))
        result = await tool.run(dict(arguments or {}), self.context())
        for event in result.events:
            self.events.append(event)
            self.state = self.state.apply(event)
        return result

    async def ok(self, name: str, arguments: Mapping[str, Any] | None = None) -> str:
        result = await self.run(name, arguments)
        assert not result.is_error, result.content
        assert isinstance(result.content, str)
        return result.content

    async def fails(self, name: str, arguments: Mapping[str, Any] | None = None) -> str:
        result = await self.run(name, arguments)
        assert result.is_error, result.content
        assert isinstance(result.content, str)
        return result.content


def bench(config: Config, tools: Iterable[Tool], projections: Sequence[Projection]) -> Bench:
    tools = list(tools)
    for tool in tools:
        jsonschema.Draft202012Validator.check_schema(dict(tool.spec.input_schema))
        assert tool.spec.family == "workspace" and tool.spec.name.startswith("workspace_")
    return Bench(
        config=config,
        workspace=config.workspace_root,
        tools={tool.spec.name: tool for tool in tools},
        state=ToolState.empty(projections),
    )
