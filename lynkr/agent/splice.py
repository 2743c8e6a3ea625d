"""Putting the rounds the client never saw back at their exact place in its next request.

The client echoes back each assistant message as it received it.  :func:`message_key` hashes that message's
content with the user message before it (normalised: what the client may change on the way back,
``cache_control``, a thinking signature, a string for a lone text block, an empty text block, does not count),
and the table maps the key to the canonical messages that stand for it: the server-run rounds, ending with the
last round's assistant message.  lynkr's own tool results of that last round go at the head of the client's
next user message, merged with the client's results in the order of the tool_use blocks, so every tool_use has
its tool_result in the very next user message.  Nothing depends on timing or on the session id.

The table is derived state (:data:`SPLICES`): rebuilt at start-up from its snapshot and the ``agent`` stream's
tail, kept live by the projector.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs
import msgpack  # type: ignore[import-untyped]
import orjson

from lynkr.agent.events import AGENT_STREAM, RoundsKept
from lynkr.events.pmap import PMap
from lynkr.events.projections import Projection
from lynkr.events.records import Event, Payload, Recorded

JsonMessage = dict[str, Any]


@attrs.frozen(kw_only=True)
class Splice:
    messages: tuple[JsonMessage, ...]  # replace the client's copy; the last is an assistant message
    results: tuple[JsonMessage, ...]  # lynkr's tool_result blocks for the next user message


SpliceTable = PMap[str, Splice]


def apply_splice_event(table: SpliceTable, event: Event) -> SpliceTable:
    """The fold that rebuilds the table from the log; events of other kinds change nothing."""
    if isinstance(event, RoundsKept):
        return table.set(event.key, Splice(messages=tuple(event.messages), results=tuple(event.results)))
    return table


def apply_splice_payload(table: SpliceTable, seq: int, time_ns: int, topic: str, payload: Payload) -> SpliceTable:
    """:func:`apply_splice_event` over a record's payload; a damaged payload that still decoded changes nothing."""
    if topic != RoundsKept.TYPE:
        return table
    try:
        key, messages, results = payload["key"], payload["messages"], payload["results"]
    except KeyError:
        return table
    if not (isinstance(key, str) and isinstance(messages, list) and isinstance(results, list)):
        return table
    return table.set(key, Splice(messages=tuple(messages), results=tuple(results)))


def _apply_recorded(table: SpliceTable, recorded: Recorded) -> SpliceTable:
    return apply_splice_event(table, recorded.event)


SPLICES: Projection[SpliceTable] = Projection(
    initial=SpliceTable(),
    apply=_apply_recorded,
    topics=frozenset({RoundsKept.TYPE}),
    apply_payload=apply_splice_payload,
    stream=AGENT_STREAM,
)


def encode_splices(table: SpliceTable) -> bytes:
    rows = [[key, list(found.messages), list(found.results)] for key, found in table.items()]
    return zlib.compress(msgpack.packb(rows, use_bin_type=True), 1)


def decode_splices(data: bytes | memoryview) -> SpliceTable:
    """What :func:`encode_splices` encoded; raises ``ValueError`` (or zlib's, msgpack's errors) on bytes it did not."""
    table = SpliceTable()
    for key, messages, results in msgpack.unpackb(zlib.decompress(data)):
        if not (type(key) is str and type(messages) is list and type(results) is list):
            raise ValueError("a splice in the snapshot has the wrong shape")
        table = table.set(key, Splice(messages=tuple(messages), results=tuple(results)))
    return table


def message_key(previous: object, content: object) -> str:
    """The key of an assistant message's ``content`` (a string or a list of blocks), in its place: after the
    message ``previous`` (the user message it answers, as the client sent it), so that two turns that happen to
    end with the same words ("Done.") are told apart."""
    normal = [_normal_content(previous), _normal_content(content)]
    return hashlib.blake2b(orjson.dumps(normal, option=orjson.OPT_SORT_KEYS), digest_size=16).hexdigest()


# What a client may change in a block it echoes back: the cache marker it moves to the newest message, and a
# thinking block's signature (sent back as received, or as "" when none came).
_VOLATILE = frozenset({"cache_control", "signature"})


def _normal_content(content: object) -> list[Any]:
    blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
    if not isinstance(blocks, list):
        return []
    normal: list[Any] = []
    for block in blocks:
        if not isinstance(block, Mapping):
            continue
        if block.get("type") == "text" and not block.get("text"):
            continue  # an empty text block is dropped on the way (the API refuses them)
        kept = {key: value for key, value in block.items() if key not in _VOLATILE}
        if block.get("type") == "tool_result" and "content" in kept:
            kept["content"] = _normal_content(kept["content"])
        normal.append(kept)
    return normal


def splice(messages: Sequence[Mapping[str, Any]], table: SpliceTable) -> list[JsonMessage] | None:
    """The conversation with every known assistant message replaced by its canonical rounds; None when none is."""
    if not table:
        return None
    out: list[JsonMessage] | None = None
    pending: tuple[JsonMessage, ...] = ()
    pending_order: list[str] = []
    for position, message in enumerate(messages):
        found = None
        if message.get("role") == "assistant":
            previous = messages[position - 1].get("content") if position else None
            found = table.get(message_key(previous, message.get("content")))
        if found is None and not pending:
            if out is not None:
                out.append(dict(message))
            continue
        if out is None:
            out = [dict(m) for m in messages[:position]]
        if pending:
            if message.get("role") == "user":
                out.append(_merged(message, pending, pending_order))
                pending, pending_order = (), []
                continue
            out.append({"role": "user", "content": _ordered([], pending, pending_order)})
            pending, pending_order = (), []
        if found is None:
            out.append(dict(message))
            continue
        out.extend(found.messages)
        if found.results:
            pending = found.results
            pending_order = _tool_use_ids(found.messages[-1])
    if out is not None and pending:
        out.append({"role": "user", "content": _ordered([], pending, pending_order)})
    return out


def _tool_use_ids(message: Mapping[str, Any]) -> list[str]:
    content = message.get("content")
    if not isinstance(content, list):
        return []
    return [str(block.get("id")) for block in content if isinstance(block, Mapping) and block.get("type") == "tool_use"]


def _merged(user: Mapping[str, Any], results: Iterable[JsonMessage], order: list[str]) -> JsonMessage:
    content = user.get("content")
    blocks: list[Any] = [{"type": "text", "text": content}] if isinstance(content, str) else list(content or [])
    return {**user, "content": _ordered(blocks, results, order)}


def _ordered(blocks: list[Any], results: Iterable[JsonMessage], order: list[str]) -> list[Any]:
    """Every tool_result first, in tool_use order, then the user's other blocks as they were."""
    ours = list(results)
    theirs = [block for block in blocks if isinstance(block, Mapping) and block.get("type") == "tool_result"]
    rest = [block for block in blocks if not (isinstance(block, Mapping) and block.get("type") == "tool_result")]
    rank = {tool_use_id: position for position, tool_use_id in enumerate(order)}
    merged = sorted([*theirs, *ours], key=lambda block: rank.get(str(block.get("tool_use_id")), len(rank)))
    return [*merged, *rest]
