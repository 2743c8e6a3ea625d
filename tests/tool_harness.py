"""A real toolbox over a real temporary workspace, for the tool tests: calls go through ``run_call``."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from lynkr.config import Config
from lynkr.events.records import Event
from lynkr.tools.base import ToolContext
from lynkr.tools.runner import Outcome, Toolbox, run_call
from lynkr.tools.toolbox import build_toolbox, tool_context
from tests.conftest import make_config


@attrs.define
class Harness:
    """One workspace, its toolbox and the folded tool state; ``call`` runs a tool and folds its events."""

    config: Config
    toolbox: Toolbox
    context: ToolContext
    recorded: list[Event] = attrs.field(factory=list)
    calls: int = 0

    @property
    def workspace(self) -> Path:
        return self.context.workspace

    async def call(self, name: str, **arguments: Any) -> Outcome:
        self.calls += 1
        outcome = await run_call(
            name=name, tool_use_id=f"toolu_{self.calls}", arguments=arguments, toolbox=self.toolbox, context=self.context
        )
        state = self.context.state
        for event in outcome.events:
            state = state.apply(event)
        self.context = attrs.evolve(self.context, state=state)
        self.recorded.extend(outcome.events)
        return outcome

    async def text(self, name: str, **arguments: Any) -> str:
        outcome = await self.call(name, **arguments)
        assert isinstance(outcome.result.content, str)
        return outcome.result.content


def harness(tmp_path: Path, env: Mapping[str, str] | None = None, *, base_environ: Mapping[str, str] | None = None) -> Harness:
    tmp_path.mkdir(parents=True, exist_ok=True)
    config = make_config(tmp_path, env)
    toolbox = build_toolbox(config)
    context = tool_context(config, toolbox, session_id="sess-tools", environ={**os.environ, **(base_environ or {})})
    return Harness(config=config, toolbox=toolbox, context=context)
