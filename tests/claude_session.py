"""A realistic Claude Code session, turn by turn: the request bodies the CLI sends and the answers it gets.

Shaped after /work/shared/reference/claude-code-cli.md (§3 and §5): three system blocks (a billing line that
changes on every request, the agent line, a ~7 kB main prompt), a ~9 kB ``role: system`` message at index 1
(a list with a cache marker on the first request, a string afterwards), ~45 kB of tool schemas, and a
transcript that grows by an assistant turn (text and tool_use blocks) and a user turn (their tool_results)
per request, with the ``cache_control`` marker on the last block of the last message.  Bodies are compact
JSON in the CLI's key order, as ``JSON.stringify`` writes them.  Deterministic for a given seed.

Used by the transcript tests and by ``bench/eventlog.py``.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import attrs
import orjson

MARKER = {"type": "ephemeral"}
TOOL_NAMES = (
    "Agent", "Bash", "CronCreate", "CronDelete", "Edit", "ListAgents", "NotebookEdit", "Read",
    "ReportFindings", "ScheduleWakeup", "SendMessage", "Skill", "TaskStop", "WebFetch", "WebSearch", "Write",
)
WORDS = (
    "the file function test module change error value request session token parser config return import "
    "class async await result index cache stream event record daemon build check path folder line"
).split()


@attrs.frozen
class Exchange:
    """One request of the session and the answer it got."""

    body: bytes
    request: dict[str, Any]
    response: dict[str, Any]


def _text(rng: random.Random, size: int) -> str:
    words: list[str] = []
    length = 0
    while length < size:
        word = rng.choice(WORDS)
        words.append(word)
        length += len(word) + 1
    return " ".join(words)


def _code(rng: random.Random, size: int) -> str:
    lines: list[str] = []
    length = 0
    number = 1
    while length < size:
        line = f"{number}\t    {rng.choice(WORDS)} = {rng.choice(WORDS)}({rng.choice(WORDS)}, {rng.randrange(1000)})"
        lines.append(line)
        length += len(line) + 1
        number += 1
    return "\n".join(lines)


def _tools(rng: random.Random) -> list[dict[str, Any]]:
    tools = []
    for name in TOOL_NAMES:
        properties = {
            f"{rng.choice(WORDS)}_{index}": {"type": "string", "description": _text(rng, rng.randrange(80, 300))}
            for index in range(rng.randrange(2, 6))
        }
        tools.append(
            {
                "name": name,
                "description": _text(rng, rng.randrange(1500, 2500)),
                "input_schema": {
                    "$schema": "https://json-schema.org/draft/2020-12/schema",
                    "type": "object",
                    "properties": properties,
                    "required": list(properties)[:1],
                    "additionalProperties": False,
                },
            }
        )
    return tools


def session(turns: int, *, seed: int = 7) -> Iterator[Exchange]:
    """The ``turns`` requests of one session, each with the answer the model gave."""
    rng = random.Random(seed)
    tools = _tools(rng)
    main_prompt = _text(rng, 7000)
    system_message_text = "<env>" + _text(rng, 9000) + "</env>"
    metadata = {"user_id": orjson.dumps({"device_id": "%064x" % rng.getrandbits(256), "account_uuid": "",
                                          "session_id": "0f8e5c1a-1111-4222-8333-944455556666"}).decode()}
    first_user = {
        "role": "user",
        "content": [
            {"type": "text", "text": "<system-reminder>" + _text(rng, 600) + "</system-reminder>"},
            {"type": "text", "text": "<system-reminder>" + _text(rng, 300) + "</system-reminder>"},
            {"type": "text", "text": "Refactor the parser module and make the tests pass."},
        ],
    }
    history: list[dict[str, Any]] = [first_user]
    for turn in range(turns):
        billing = f"x-anthropic-billing-header: cc_version=2.1.332.{rng.getrandbits(24):06x}; cc_entrypoint=sdk-cli;"
        if turn == 0:
            system_message: dict[str, Any] = {
                "role": "system",
                "content": [{"type": "text", "text": system_message_text, "cache_control": MARKER}],
            }
        else:
            system_message = {"role": "system", "content": system_message_text}
        messages = [history[0], system_message, *history[1:]]
        if turn > 0:
            # The marker sits on the last block of the last message (on the first request the system message has it).
            last = messages[-1]
            blocks = [dict(block) for block in last["content"]]
            blocks[-1]["cache_control"] = MARKER
            messages[-1] = {**last, "content": blocks}
        request = {
            "model": "claude-opus-5-5",
            "messages": messages,
            "system": [
                {"type": "text", "text": billing},
                {"type": "text", "text": "You are a Claude agent, built on Anthropic's Claude Agent SDK.",
                 "cache_control": MARKER},
                {"type": "text", "text": main_prompt, "cache_control": MARKER},
            ],
            "tools": tools,
            "metadata": metadata,
            "max_tokens": 128000,
            "thinking": {"type": "adaptive"},
            "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
            "output_config": {"effort": "medium"},
            "stream": True,
        }
        calls = [
            {"type": "tool_use", "id": f"toolu_{turn:03d}_{index}", "name": rng.choice(("Read", "Bash", "Edit")),
             "input": {"file_path": f"/src/{rng.choice(WORDS)}.py", "description": _text(rng, 40)}}
            for index in range(rng.randrange(1, 4))
        ]
        content = [{"type": "text", "text": _text(rng, rng.randrange(100, 800))}, *calls]
        response = {
            "id": f"msg_{turn:04d}",
            "type": "message",
            "role": "assistant",
            "model": "claude-opus-5-5",
            "content": content,
            "stop_reason": "tool_use",
            "stop_sequence": None,
            "usage": {"input_tokens": 12000 + 1500 * turn, "output_tokens": rng.randrange(50, 900)},
        }
        yield Exchange(body=orjson.dumps(request), request=request, response=response)
        history.append({"role": "assistant", "content": content})
        history.append(
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": call["id"], "content": _code(rng, rng.randrange(200, 4000))}
                    for call in calls
                ],
            }
        )
