"""One tool call, start to finish: resolve, validate, judge, run, cut, record.

:func:`run_call` is the only way a tool runs, whoever asks (the agent loop, the hybrid splice, ``/mcp``):

1. the name resolves through the registry (aliases included) to the canonical tool;
2. the arguments are validated against the tool's JSON schema;
3. the tool turns them into canonical :class:`~lynkr.tools.base.Action` records, and every policy rule judges
   every action; the first refusal ends the call (a rule that fails refuses: the policy fails closed);
4. the tool runs; an exception becomes an error result, never a crash of the worker;
5. output over ``config.tools.output_limit_bytes`` is cut, with a marker that says how to get the rest, and
   every configured secret value in it is masked;
6. a ``tool.ran`` (or ``tool.refused``) event describes the call, arguments scrubbed.

Unknown tools, bad input and refusals are ordinary results with ``is_error``: the model reads them and tries
again.  The wording of the first two is the Claude Code CLI's own, so a model sees what it was trained on.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs
import jsonschema

from lynkr.events.records import Event
from lynkr.events.scrub import Scrubber
from lynkr.tools.base import (
    Action,
    PolicyRule,
    Projection,
    Refusal,
    Registry,
    Tool,
    ToolContext,
    ToolInputError,
    ToolResult,
    ToolSpec,
)
from lynkr.tools.events import ToolRan, ToolRefused

log = logging.getLogger("lynkr.tools")

DEFAULT_OUTPUT_LIMIT_BYTES = 30_000
# Of a cut output, this share is kept from the start and the rest from the end: errors tend to come last.
HEAD_SHARE = 0.7
DISALLOWED_RULE = "disallowed_tools"


@attrs.frozen(kw_only=True)
class Toolbox:
    """Every tool, rule and projection lynkr runs with; built once per daemon (and per tool-worker restart)."""

    registry: Registry
    rules: tuple[PolicyRule, ...]
    projections: tuple[Projection, ...]
    # Masks configured secret values in tool events' arguments and in what tools return.
    scrubber: Scrubber = attrs.field(factory=Scrubber)
    # Canonical names of the tools POLICY_DISALLOWED_TOOLS names: never offered, refused when called anyway.
    disallowed: frozenset[str] = frozenset()

    def specs(self, families: Iterable[str] | None = None) -> list[ToolSpec]:
        """What to offer the model: the registry's tools of ``families`` (all when None) that are allowed."""
        return [spec for spec in self.registry.specs(families) if spec.name not in self.disallowed]


@attrs.frozen(kw_only=True)
class Outcome:
    tool_use_id: str
    tool: str  # the canonical tool name the call resolved to ("" if unknown)
    result: ToolResult  # unknown tool, bad input and refusals are results too
    events: tuple[Event, ...]  # to record in order: a ToolRan (or ToolRefused) event, then result.events


def tool_use_error(message: str) -> ToolResult:
    """A bad-input result, worded and wrapped the way the Claude Code CLI words its own."""
    return ToolResult(content=f"<tool_use_error>{message}</tool_use_error>", is_error=True)


async def run_call(
    *,
    name: str,
    tool_use_id: str,
    arguments: Mapping[str, Any],
    toolbox: Toolbox,
    context: ToolContext,
) -> Outcome:
    started = time.perf_counter()
    scrubbed = toolbox.scrubber.scrub(dict(arguments))

    def finished(canonical: str, result: ToolResult, output_bytes: int) -> Outcome:
        ran = ToolRan(
            session_id=context.session_id,
            tool_use_id=tool_use_id,
            tool=name,
            canonical=canonical,
            arguments=scrubbed,
            result_bytes=result.size(),
            output_bytes=output_bytes,
            exit_code=result.exit_code,
            is_error=result.is_error,
            duration_ms=round((time.perf_counter() - started) * 1000, 3),
        )
        return Outcome(tool_use_id=tool_use_id, tool=canonical, result=result, events=(ran, *result.events))

    try:
        tool = toolbox.registry.resolve(name)
    except KeyError:
        result = tool_use_error(f"Error: No such tool available: {name}")
        return finished("", result, result.size())
    canonical = tool.spec.name

    problems = schema_problems(tool.spec.input_schema, arguments)
    if problems:
        result = tool_use_error(f"InputValidationError: {name} failed due to the following issues:\n" + problems)
        return finished(canonical, result, result.size())

    try:
        actions = tool.actions(arguments)
    except ToolInputError as exc:
        result = tool_use_error(str(exc))
        return finished(canonical, result, result.size())
    except Exception as exc:  # a tool that cannot even say what it would do runs nothing
        log.exception("tool %s failed to describe its actions", canonical)
        result = ToolResult(content=f"Error: {name} could not read its input: {type(exc).__name__}: {exc}", is_error=True)
        return finished(canonical, result, result.size())

    if canonical in toolbox.disallowed:
        refusal: Refusal | None = Refusal(
            rule=DISALLOWED_RULE,
            reason=f"{canonical} is disallowed here (POLICY_DISALLOWED_TOOLS); do without it or ask the user to allow it",
        )
        refused_kind = actions[0].kind if actions else ""
    else:
        judged = await judge(actions, toolbox.rules, context)
        refusal, refused_kind = (judged[1], judged[0].kind) if judged else (None, "")
    if refusal is not None:
        refused = ToolRefused(
            session_id=context.session_id,
            tool_use_id=tool_use_id,
            tool=name,
            canonical=canonical,
            arguments=scrubbed,
            action=refused_kind,
            rule=refusal.rule,
            reason=refusal.reason,
        )
        result = ToolResult(content=f"lynkr's policy refused this {name} call: {refusal.reason}", is_error=True)
        return Outcome(tool_use_id=tool_use_id, tool=canonical, result=result, events=(refused,))

    result = await _run(tool, name, arguments, context)
    output_bytes = result.size()
    limit = getattr(context.settings, "output_limit_bytes", DEFAULT_OUTPUT_LIMIT_BYTES)
    return finished(canonical, masked(cut_output(result, limit), toolbox.scrubber), output_bytes)


def masked(result: ToolResult, scrubber: Scrubber) -> ToolResult:
    """``result`` with every configured secret value masked: whatever a command manages to print (a key read
    from a file the policy could not see through, say), the model never receives lynkr's own credentials."""
    if isinstance(result.content, str):
        content: str | list[dict[str, Any]] = scrubber.scrub_text(result.content)
    else:
        content = scrubber.scrub(result.content)
    return result if content is result.content or content == result.content else attrs.evolve(result, content=content)


async def judge(
    actions: Sequence[Action], rules: Sequence[PolicyRule], context: ToolContext
) -> tuple[Action, Refusal] | None:
    """The first refusal any rule gives any action, or None when all are allowed."""
    for action in actions:
        for rule in rules:
            try:
                refusal = await rule.judge(action, context)
            except Exception as exc:  # a broken rule must not let the action through
                log.exception("policy rule %s failed on %s", rule.name, action.kind)
                refusal = Refusal(
                    rule=rule.name, reason=f"the policy rule {rule.name} could not judge it ({exc!r}); nothing ran"
                )
            if refusal is not None:
                return action, refusal
    return None


async def _run(tool: Tool, name: str, arguments: Mapping[str, Any], context: ToolContext) -> ToolResult:
    try:
        return await tool.run(arguments, context)
    except ToolInputError as exc:
        return tool_use_error(str(exc))
    except Exception as exc:
        log.exception("tool %s failed", name)
        return ToolResult(content=f"Error: {name} failed: {type(exc).__name__}: {exc}", is_error=True)


# Building a validator costs more than using it; tool specs live as long as the daemon, so keep one per schema
# (keyed by identity, the schema kept alongside so its id cannot be reused while cached).
_VALIDATORS: dict[int, tuple[Mapping[str, Any], Any]] = {}


def _validator(schema: Mapping[str, Any]) -> Any:
    cached = _VALIDATORS.get(id(schema))
    if cached is not None and cached[0] is schema:
        return cached[1]
    validator_class = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    validator = validator_class(schema)
    if len(_VALIDATORS) > 4096:
        _VALIDATORS.clear()
    _VALIDATORS[id(schema)] = (schema, validator)
    return validator


def schema_problems(schema: Mapping[str, Any], arguments: Mapping[str, Any]) -> str:
    """The schema violations of ``arguments``, one per line in the CLI's words; empty when valid."""
    validator = _validator(schema)
    lines = [_describe(error) for error in sorted(validator.iter_errors(arguments), key=lambda e: list(e.path))]
    return "\n".join(lines)


_JSON_TYPES = {dict: "object", list: "array", str: "string", bool: "boolean", int: "number", float: "number"}


def _describe(error: jsonschema.ValidationError) -> str:
    where = ".".join(str(part) for part in error.absolute_path)
    if error.validator == "required":
        missing = str(error.message).split("'")[1] if "'" in error.message else error.message
        prefix = f"{where}." if where else ""
        return f"The required parameter `{prefix}{missing}` is missing"
    if error.validator == "additionalProperties":
        known = error.schema.get("properties", {}) if isinstance(error.schema, dict) else {}
        extra = sorted(set(error.instance) - set(known)) if isinstance(error.instance, dict) else []
        return "\n".join(f"An unexpected parameter `{name}` was provided" for name in extra)
    if error.validator == "type":
        given = _JSON_TYPES.get(type(error.instance), "null" if error.instance is None else "unknown")
        return f"The parameter `{where}` type is expected as `{error.validator_value}` but provided as `{given}`"
    return f"The parameter `{where}` is invalid: {error.message}" if where else error.message


def cut_output(result: ToolResult, limit_bytes: int) -> ToolResult:
    """``result`` with its text cut to ``limit_bytes`` (the start and the end kept), and a marker in between."""
    if isinstance(result.content, str):
        content: str | list[dict[str, Any]] = _cut_text(result.content, limit_bytes)
    else:
        content = [
            {**block, "text": _cut_text(block["text"], limit_bytes)}
            if block.get("type") == "text" and isinstance(block.get("text"), str)
            else block
            for block in result.content
        ]
    return result if content == result.content else attrs.evolve(result, content=content)


def _cut_text(text: str, limit_bytes: int) -> str:
    data = text.encode()
    if len(data) <= limit_bytes:
        return text
    head_bytes = int(limit_bytes * HEAD_SHARE)
    tail_bytes = limit_bytes - head_bytes
    head = data[:head_bytes].decode(errors="ignore")
    tail = data[len(data) - tail_bytes :].decode(errors="ignore")
    omitted = len(data) - len(head.encode()) - len(tail.encode())
    marker = (
        f"\n\n[lynkr cut {omitted} bytes from the middle of this output ({len(data)} bytes in all, limit "
        f"{limit_bytes}). To see the rest, ask for less at a time: Read/fs_read with offset and limit, "
        "Grep/workspace_search for what you need, or redirect a command's output to a file in the workspace "
        "and read it in parts.]\n\n"
    )
    return head + marker + tail
