"""Content-addressed request bodies: split and joined back byte for byte, stored once, and linear in a session."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lynkr.events.catalog import RequestReceived, ResponseCompleted
from lynkr.events.codec import decode, encode_payload
from lynkr.events.lmdb_store import LmdbEventStore
from lynkr.events.transcript import CHAIN, MIN_BODY_BYTES, DictBlobs, blob_digest, join, part_digests, split
from tests.claude_session import session

KiB = 1024


def received(n: int, body: bytes, session_id: str = "sess") -> RequestReceived:
    return RequestReceived.of(
        request_id=f"req_{n}", session_id=session_id, path="/v1/messages", headers={}, request=orjson.loads(body),
        body=body,
    )


def completed(n: int, message: dict[str, Any]) -> ResponseCompleted:
    return ResponseCompleted(
        request_id=f"req_{n}", session_id="sess", provider="p", model="m", message=message, latency_ms=1.0
    )


# Random growing transcripts: any text (unicode, escapes, markers), messages only ever appended.

texts = st.text(min_size=0, max_size=400)
blocks = st.one_of(
    st.builds(lambda text: {"type": "text", "text": text}, texts),
    st.builds(
        lambda ident, text, error: {"type": "tool_result", "tool_use_id": ident, "content": text, "is_error": error},
        st.text(min_size=1, max_size=12), texts, st.booleans(),
    ),
    st.builds(lambda ident, value: {"type": "tool_use", "id": ident, "name": "Bash", "input": {"x": value}},
              st.text(min_size=1, max_size=12), st.one_of(st.integers(-(2**63), 2**63 - 1), st.floats(allow_nan=False, allow_infinity=False), texts)),
)
messages = st.builds(
    lambda role, content: {"role": role, "content": content},
    st.sampled_from(["user", "assistant", "system"]),
    st.one_of(texts, st.lists(blocks, min_size=1, max_size=4)),
)


@st.composite
def growing_session(draw: st.DrawFn) -> list[bytes]:
    history = draw(st.lists(messages, min_size=1, max_size=12))
    cuts = sorted(set(draw(st.lists(st.integers(1, len(history)), min_size=1, max_size=6))))
    system = draw(st.lists(st.builds(lambda t: {"type": "text", "text": t}, texts), max_size=3))
    tools = draw(st.lists(st.builds(lambda d: {"name": "T", "description": d}, texts), max_size=3))
    # Past MIN_BODY_BYTES, as Claude Code's bodies always are, so that every body is split.
    tools.append({"name": "Padding", "description": "p" * MIN_BODY_BYTES})
    pretty = draw(st.booleans())
    bodies = []
    for cut in cuts:
        shown = [dict(message) for message in history[:cut]]
        last = shown[-1]
        if draw(st.booleans()) and isinstance(last["content"], list):
            content = [dict(block) for block in last["content"]]
            content[-1]["cache_control"] = {"type": "ephemeral"}
            shown[-1] = {**last, "content": content}
        request = {"model": "m", "messages": shown, "system": system, "tools": tools, "stream": True}
        # ensure_ascii and indent: a client that writes JSON differently must still get its exact bytes back.
        bodies.append(json.dumps(request, indent=1).encode() if pretty else orjson.dumps(request))
    return bodies


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(bodies=growing_session())
def test_bodies_of_a_growing_transcript_read_back_byte_for_byte(tmp_path_factory: Any, bodies: list[bytes]) -> None:
    path = tmp_path_factory.mktemp("log")
    with LmdbEventStore.open(path, map_size=1024 * KiB) as store:
        store.append([("sess", received(n, body)) for n, body in enumerate(bodies)])
        read = [record.event for record in store.read()]
        assert [event.body for event in read if isinstance(event, RequestReceived)] == bodies


def test_split_joins_back_exactly_and_shares_the_marked_message_with_its_plain_self() -> None:
    first, second, third = (exchange.body for exchange in session(3))
    blobs: dict[bytes, bytes] = {}
    for body in (first, second, third):
        parts = split(body)
        assert parts.parts and len(parts.template) < len(body) // 10
        assert join(parts.template, parts.parts, DictBlobs(parts.blobs)) == body
        blobs.update(parts.blobs)
    # The last user message carries the cache marker in the second request and not in the third: one blob.
    marked = orjson.loads(second)["messages"][-1]
    plain = {**marked, "content": [{k: v for k, v in b.items() if k != "cache_control"} for b in marked["content"]]}
    assert blob_digest(orjson.dumps(plain)) in split(second).blobs
    assert blob_digest(orjson.dumps(plain)) in split(third).blobs
    # The messages resent at the front are one chain reference, not one reference each.
    assert len(part_digests(split(third).parts)) <= 6


def test_a_body_that_is_not_json_or_is_small_is_stored_whole() -> None:
    for body in (b"not json", b"[1, 2, 3]", b"", b"{" * MIN_BODY_BYTES):
        assert split(body, min_bytes=0).parts == b"" and split(body, min_bytes=0).template == body
    small = orjson.dumps({"messages": [{"role": "user", "content": "x" * 1000}]})
    assert split(small).parts == b"" and split(small, min_bytes=0).parts != b""


@settings(max_examples=40, deadline=None)
@given(bodies=growing_session())
def test_split_then_join_is_the_identity(bodies: list[bytes]) -> None:
    for body in bodies:
        for piece in (body, body[: len(body) // 2]):  # a truncated body is not JSON: it is kept whole
            cut = split(piece, min_bytes=0)
            assert join(cut.template, cut.parts, DictBlobs(cut.blobs)) == piece


@settings(max_examples=40, deadline=None)
@given(bodies=growing_session())
def test_the_parsed_body_the_edge_hands_over_splits_it_as_parsing_it_again_would(bodies: list[bytes]) -> None:
    for body in bodies:
        assert split(body, request=orjson.loads(body)) == split(body)


def test_a_parsed_body_that_disagrees_with_the_bytes_still_joins_back_to_the_bytes() -> None:
    # As after the scrubber masked a secret in the bytes: the hint then names parts the bytes no longer hold.
    body = next(iter(session(3))).body
    request = orjson.loads(body)
    for index, message in enumerate(request["messages"]):
        request["messages"][index] = {**message, "role": "assistant" if message["role"] == "user" else "user"}
    request["tools"] = [*request["tools"], {"name": "Extra", "description": "not in the bytes"}]
    request = {"tools": request.pop("tools"), **request}  # and the members in another order
    cut = split(body, request=request)
    assert join(cut.template, cut.parts, DictBlobs(cut.blobs)) == body


def test_chain_parts_are_used_for_the_leading_messages() -> None:
    body = next(iter(session(2))).body
    kinds = [split(body).parts[4]]  # the kind byte of the first part (after its 4-byte offset)
    assert CHAIN in kinds


def test_a_version_2_request_reads_back_its_body_through_the_same_join() -> None:
    body = orjson.dumps({"model": "m", "messages": [{"role": "user", "content": "x" * 5000}]})
    v2 = {
        "request_id": "r", "session_id": "s", "path": "/v1/messages", "model": "m", "stream": False, "headers": {},
        "messages": 1, "tools": [], "last_user_text": "x", "body": body,
    }
    event = decode(3, encode_payload(1, "s", "request.received", 2, v2)).event
    assert isinstance(event, RequestReceived)
    assert (event.template, event.parts, event.body) == (body, b"", body)


def test_each_message_is_stored_once_across_turns(tmp_path: Path) -> None:
    exchanges = list(session(12))
    with LmdbEventStore.open(tmp_path / "log") as store:
        for n, exchange in enumerate(exchanges):
            store.append([("sess", received(n, exchange.body))])
        last = split(exchanges[-1].body)
        for digest, data in last.blobs.items():
            assert store.blob(digest) == data
        stored = [record.event for record in store.read()]
        assert all(isinstance(e, RequestReceived) and e.body == x.body for e, x in zip(stored, exchanges))


def test_a_claude_code_session_logs_linearly_within_one_and_a_half_times_its_final_transcript(tmp_path: Path) -> None:
    """The property is structural: a 40-turn session has the 200-turn one's shape (bench/eventlog.py)."""
    exchanges = list(session(40))
    final = len(exchanges[-1].body)
    responses = sum(len(orjson.dumps(exchange.response)) for exchange in exchanges)
    resent = sum(len(exchange.body) for exchange in exchanges)
    assert resent > 20 * final  # what storing each body whole would cost before compression
    with LmdbEventStore.open(tmp_path / "log") as store:
        for n, exchange in enumerate(exchanges):
            store.append([("sess", received(n, exchange.body)), ("sess", completed(n, exchange.response))])
        used = store.stats().bytes_used
    assert used <= 1.5 * (final + responses)


def test_the_log_shows_a_stored_request_with_its_body(tmp_path: Path) -> None:
    from lynkr.inspect import render_event_line

    (exchange,) = list(session(1))
    with LmdbEventStore.open(tmp_path / "log") as store:
        store.append([("sess", received(0, exchange.body))])
        (recorded,) = store.read()
        assert isinstance(recorded.event, RequestReceived) and recorded.event.parts
        line = json.loads(render_event_line(recorded, as_json=True))
    assert "template" not in line["payload"] and "parts" not in line["payload"]
    assert line["payload"]["body"] == str(exchange.body)
