"""Writes a well-formed Anthropic event stream; provider converters feed it fragments.

The guarantees every converter needs, kept in one place:
- ``message_start`` comes first, exactly once;
- blocks are sequential: start, deltas, stop, and only then the next block's start;
- a text block is opened lazily on the first non-empty text, so there is never an empty text block;
- ``thinking_delta`` never goes into a text block (a kind change always stops the open block first);
- the final ``message_delta`` always carries usage, and ``message_stop`` comes last.

What a fragment does, by the kind of the open block (the whole state machine):

    open block \\ fragment   thinking        text            tool call
    none                    start, delta    start, delta    start (+ delta)
    thinking                delta           stop, start     stop, start
    text                    stop, start     delta           stop, start
    tool_use                stop, start     stop, start     delta (same call) | stop, start (next call)
"""

from __future__ import annotations

import enum

from lynkr.wire.types import ContentBlock, Delta, StreamEvent, Usage


class Block(enum.Enum):
    THINKING = "thinking"
    TEXT = "text"
    TOOL_USE = "tool_use"


class EventWriter:
    """Collects events; the converter hands them out with ``take()`` after each upstream chunk."""

    def __init__(self, *, message_id: str, model: str, input_tokens: int) -> None:
        self.message_id = message_id
        self.model = model
        self.input_tokens = input_tokens
        self.open: Block | None = None
        self.tool_uses = 0  # tool_use blocks written so far
        self.output_chars = 0  # for an output-token estimate when the upstream reports no usage
        self.finished = False
        self._tool_json_sent = False
        self._index = -1
        self._started = False
        self._events: list[StreamEvent] = []

    def take(self) -> list[StreamEvent]:
        events, self._events = self._events, []
        return events

    def start(self) -> None:
        if self._started:
            return
        self._started = True
        self._events.append(
            {
                "type": "message_start",
                "message": {
                    "id": self.message_id,
                    "type": "message",
                    "role": "assistant",
                    "model": self.model,
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": {
                        "input_tokens": self.input_tokens,
                        "output_tokens": 0,
                        "cache_creation_input_tokens": 0,
                        "cache_read_input_tokens": 0,
                    },
                },
            }
        )

    def text(self, text: str) -> None:
        if not text:
            return
        if self.open is not Block.TEXT:
            self.close()
            self._index += 1
            self.open = Block.TEXT
            self._start_block({"type": "text", "text": ""})
        self.output_chars += len(text)
        self._delta({"type": "text_delta", "text": text})

    def thinking(self, text: str) -> None:
        if not text:
            return
        if self.open is not Block.THINKING:
            self.close()
            self._index += 1
            self.open = Block.THINKING
            # Upstreams other than Anthropic sign nothing: the signature stays "" and such a block is never
            # sent to a verifying upstream (converters drop it).
            self._start_block({"type": "thinking", "thinking": "", "signature": ""})
        self.output_chars += len(text)
        self._delta({"type": "thinking_delta", "thinking": text})

    def open_tool(self, tool_id: str, name: str) -> None:
        self.close()
        self._index += 1
        self.open = Block.TOOL_USE
        self.tool_uses += 1
        self._tool_json_sent = False
        self._start_block({"type": "tool_use", "id": tool_id, "name": name, "input": {}})

    def tool_json(self, fragment: str) -> None:
        """Arguments text for the open tool_use block, passed on as it arrives."""
        if not fragment or self.open is not Block.TOOL_USE:
            return
        if not self._tool_json_sent and not fragment.strip():
            return
        self._tool_json_sent = True
        self.output_chars += len(fragment)
        self._delta({"type": "input_json_delta", "partial_json": fragment})

    def close(self) -> None:
        if self.open is None:
            return
        if self.open is Block.TOOL_USE and not self._tool_json_sent:
            # A call with no arguments at all: say "{}" explicitly rather than leave the client to guess.
            self._delta({"type": "input_json_delta", "partial_json": "{}"})
        self._events.append({"type": "content_block_stop", "index": self._index})
        self.open = None

    def finish(self, *, stop_reason: str, usage: Usage) -> None:
        if self.finished:
            return
        self.start()
        self.close()
        self.finished = True
        self._events.append(
            {"type": "message_delta", "delta": {"stop_reason": stop_reason, "stop_sequence": None}, "usage": usage}
        )
        self._events.append({"type": "message_stop"})

    def _start_block(self, block: ContentBlock) -> None:
        self._events.append({"type": "content_block_start", "index": self._index, "content_block": block})

    def _delta(self, delta: Delta) -> None:
        self._events.append({"type": "content_block_delta", "index": self._index, "delta": delta})

    def estimated_output_tokens(self) -> int:
        """Roughly four characters a token; used only when the upstream reports no usage."""
        return (self.output_chars + 3) // 4
