"""Several model rounds streamed to the client as one Anthropic message.

Per round the upstream sends ``message_start``, content blocks numbered from 0, ``message_delta`` and
``message_stop``.  The client must see one message: the first ``message_start`` only, every forwarded block
renumbered so indexes stay consecutive across rounds, no ``tool_use`` block of a tool lynkr runs (nor its
deltas), and, at the very end, one ``message_delta`` with the final stop reason and the usage of all rounds
summed, then one ``message_stop``.

State, per turn: the next client index, the summed usage, and two assemblers (the client's copy, whose hash
keys the splice, and the current round's whole message, whose tool calls the loop runs).  Per round: the map
from upstream block index to client index, ``None`` for a block held back.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from lynkr.errors import UpstreamError
from lynkr.wire.anthropic import MessageAssembler
from lynkr.wire.types import Message, StreamEvent


class TurnRelay:
    def __init__(self, owned: frozenset[str]) -> None:
        self._owned = owned
        self._next_index = 0
        self._started = False
        self._input_tokens = 0
        self._output_tokens = 0
        self._client = MessageAssembler()
        self._round = MessageAssembler()
        self._round_index: dict[int, int | None] = {}
        self._round_usage: dict[str, int] = {}

    @property
    def started(self) -> bool:
        """Something reached the client: a later failure becomes an SSE error event, not an HTTP status."""
        return self._started

    def start_round(self) -> None:
        self._add_round_usage()
        self._round = MessageAssembler()
        self._round_index = {}
        self._round_usage = {}

    def feed(self, events: list[StreamEvent]) -> list[StreamEvent]:
        """The events of one upstream read, as the client should see them (possibly none)."""
        out: list[StreamEvent] = []
        for event in events:
            try:
                self._round.feed(event)
            except UpstreamError:
                pass  # an ``error`` event: forwarded below, and the round's message stays what arrived
            forwarded = self._translate(event)
            if forwarded is not None:
                self._client_feed(forwarded)
                out.append(forwarded)
        return out

    def _translate(self, event: StreamEvent) -> StreamEvent | None:
        raw = cast(Mapping[str, Any], event)  # the event types differ in their keys; read them by kind
        kind = raw["type"]
        if kind == "message_start":
            self._note_usage(raw["message"].get("usage"))
            if self._started:
                return None
            self._started = True
            return event
        if kind == "content_block_start":
            block = raw["content_block"]
            held = block.get("type") == "tool_use" and block.get("name") in self._owned
            index = None if held else self._take_index()
            self._round_index[raw["index"]] = index
            return None if index is None else cast(StreamEvent, {**raw, "index": index})
        if kind in ("content_block_delta", "content_block_stop"):
            upstream_index = raw["index"]
            if upstream_index not in self._round_index:  # a delta without its start: a text block of its own
                self._round_index[upstream_index] = self._take_index()
            index = self._round_index[upstream_index]
            return None if index is None else cast(StreamEvent, {**raw, "index": index})
        if kind == "message_delta":
            self._note_usage(raw.get("usage"))
            return None
        if kind == "message_stop":
            return None
        return event  # ping, error and what a newer API adds pass through

    def _take_index(self) -> int:
        index = self._next_index
        self._next_index += 1
        return index

    def _note_usage(self, usage: object) -> None:
        if isinstance(usage, Mapping):
            for key in ("input_tokens", "output_tokens"):
                value = usage.get(key)
                if isinstance(value, int):
                    self._round_usage[key] = value

    def _add_round_usage(self) -> None:
        self._input_tokens += self._round_usage.get("input_tokens", 0)
        self._output_tokens += self._round_usage.get("output_tokens", 0)
        self._round_usage = {}

    def _client_feed(self, event: StreamEvent) -> None:
        try:
            self._client.feed(event)
        except UpstreamError:
            pass

    def round_message(self) -> Message:
        """The upstream's whole assistant message of the current round, lynkr's tool calls included."""
        return self._round.message()

    def note(self, text: str) -> list[StreamEvent]:
        """A one-line text block of lynkr's own (a tool note, or why the loop stopped)."""
        index = self._take_index()
        events = cast(
            list[StreamEvent],
            [
                {"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}},
                {"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": text}},
                {"type": "content_block_stop", "index": index},
            ],
        )
        for event in events:
            self._client_feed(event)
        return events

    def finish(self, stop_reason: str | None) -> list[StreamEvent]:
        """The one ``message_delta`` (final stop reason, usage of every round) and the ``message_stop``."""
        self._add_round_usage()
        usage = {"input_tokens": self._input_tokens, "output_tokens": self._output_tokens}
        events = cast(
            list[StreamEvent],
            [
                {"type": "message_delta", "delta": {"stop_reason": stop_reason, "stop_sequence": None}, "usage": usage},
                {"type": "message_stop"},
            ],
        )
        for event in events:
            self._client_feed(event)
        return events

    def client_message(self) -> Message:
        """The message as the client received it (what it will echo back next turn)."""
        return self._client.message()
