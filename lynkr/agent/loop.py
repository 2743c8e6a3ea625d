"""The agent loop's decisions, as data: whose calls a round holds, what a tool result looks like in the
transcript, when the loop must stop, and what the client is told when it does.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from lynkr.tools.base import ToolResult

JsonObject = dict[str, Any]


@attrs.frozen(kw_only=True)
class Call:
    tool_use_id: str
    name: str
    arguments: Mapping[str, Any]


@attrs.frozen(kw_only=True)
class RoundCalls:
    lynkr: tuple[Call, ...]  # lynkr runs these
    client: tuple[Call, ...]  # these go back to the client


def calls_of(message: Mapping[str, Any], owned: frozenset[str]) -> RoundCalls:
    ours: list[Call] = []
    theirs: list[Call] = []
    for block in message.get("content") or ():
        if not isinstance(block, Mapping) or block.get("type") != "tool_use":
            continue
        arguments = block.get("input")
        call = Call(
            tool_use_id=str(block.get("id", "")),
            name=str(block.get("name", "")),
            arguments=arguments if isinstance(arguments, Mapping) else {},
        )
        (ours if call.name in owned else theirs).append(call)
    return RoundCalls(lynkr=tuple(ours), client=tuple(theirs))


def tool_result_block(tool_use_id: str, result: ToolResult) -> JsonObject:
    block: JsonObject = {"type": "tool_result", "tool_use_id": tool_use_id, "content": result.content}
    if result.is_error:
        block["is_error"] = True
    return block


def not_run(call: Call, why: str) -> JsonObject:
    return tool_result_block(call.tool_use_id, ToolResult(content=why, is_error=True))


def tool_note(call: Call, result: ToolResult) -> str:
    """The one-line note a client sees per server-run tool when ``LYNKR_TOOL_NOTES`` is on."""
    status = "failed" if result.is_error else "done"
    if result.exit_code is not None:
        status += f", exit code {result.exit_code}"
    return f"[lynkr ran {call.name}: {status}]\n"


@attrs.frozen(kw_only=True)
class Limits:
    max_steps: int  # model round trips per turn
    max_tool_calls: int  # tool calls lynkr runs per turn

    def over_tool_calls(self, made: int, wanted: int) -> bool:
        return made + wanted > self.max_tool_calls

    def out_of_steps(self, steps: int) -> bool:
        return steps >= self.max_steps


def tool_calls_refusal(limits: Limits) -> str:
    return (
        f"Not run: this turn reached POLICY_MAX_TOOL_CALLS ({limits.max_tool_calls} tool calls lynkr runs per "
        "turn). Ask the user to continue, or to raise the limit."
    )


def stop_message(reason: str, limits: Limits, steps: int, tool_calls: int) -> str:
    """What the client reads when a bound ends the turn."""
    if reason == "max_steps":
        return (
            f"\n\n[lynkr stopped this turn after {steps} model round trips: POLICY_MAX_STEPS is "
            f"{limits.max_steps}. The tool results so far are kept; reply \"continue\" to go on, or raise "
            "POLICY_MAX_STEPS.]"
        )
    return (
        f"\n\n[lynkr stopped this turn: the model asked for more tool calls than POLICY_MAX_TOOL_CALLS "
        f"({limits.max_tool_calls}) allows; {tool_calls} ran. Reply \"continue\" to go on, or raise "
        "POLICY_MAX_TOOL_CALLS.]"
    )

