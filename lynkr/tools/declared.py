"""A tool declared as data: its spec, how a call maps to canonical actions, and the coroutine that runs it.

Most of lynkr's own tools are one function each; this record gives such a function the :class:`Tool` shape
without a class per tool.  It also holds the small argument readers those functions share, which turn a
wrong argument into :class:`ToolInputError` (a ``<tool_use_error>`` for the model), never a crash.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import attrs

from lynkr.tools.base import Action, ToolContext, ToolInputError, ToolResult, ToolSpec

Arguments = Mapping[str, Any]


@attrs.frozen(kw_only=True)
class DeclaredTool:
    spec: ToolSpec
    describe: Callable[[Arguments], Sequence[Action]]
    implementation: Callable[[Arguments, ToolContext], Awaitable[ToolResult]]

    def actions(self, arguments: Arguments) -> Sequence[Action]:
        return self.describe(arguments)

    async def run(self, arguments: Arguments, context: ToolContext) -> ToolResult:
        return await self.implementation(arguments, context)


def schema(properties: Mapping[str, Any] | None = None, required: Sequence[str] = ()) -> dict[str, Any]:
    """A JSON schema for an object input with these properties and no others."""
    shape: dict[str, Any] = {"type": "object", "properties": dict(properties or {}), "additionalProperties": False}
    if required:
        shape["required"] = list(required)
    return shape


def text_argument(arguments: Arguments, name: str, default: str | None = None) -> str | None:
    value = arguments.get(name, default)
    if value is None or isinstance(value, str):
        return value
    raise ToolInputError(f"{name} must be a string, not {type(value).__name__}")


def required_text(arguments: Arguments, name: str) -> str:
    value = text_argument(arguments, name)
    if value is None or not value.strip():
        raise ToolInputError(f"{name} is required and must be a non-empty string")
    return value


def flag_argument(arguments: Arguments, name: str, default: bool = False) -> bool:
    value = arguments.get(name, default)
    if isinstance(value, bool):
        return value
    raise ToolInputError(f"{name} must be true or false, not {value!r}")


def count_argument(arguments: Arguments, name: str, default: int, *, low: int, high: int) -> int:
    value = arguments.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ToolInputError(f"{name} must be a whole number from {low} to {high}, not {value!r}")
    return value


def texts_argument(arguments: Arguments, name: str) -> tuple[str, ...]:
    value = arguments.get(name, [])
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return tuple(value)
    raise ToolInputError(f"{name} must be a list of strings")


def error(message: str) -> ToolResult:
    return ToolResult(content=message, is_error=True)
