from __future__ import annotations

import struct
import zlib
from typing import Any

import attrs
import msgpack  # type: ignore[import-untyped]
import orjson
import pytest

from lynkr.events.catalog import (
    ActorCrashed,
    ActorEscalated,
    DaemonStarted,
    DaemonStopped,
    RequestReceived,
    RequestRefused,
    ResponseCompleted,
    ResponseFailed,
    UpstreamAttempted,
)
from lynkr.events.codec import (
    COMPRESS_MIN_BYTES,
    COMPRESSED,
    FORMAT_VERSION,
    PLAIN,
    CorruptRecord,
    TopicFilter,
    decode,
    encode,
    encode_all,
    encode_payload,
    payload_of,
)
from lynkr.events.records import Event, EventFromTheFuture, Payload, Recorded, UnknownEventType, event, upcaster


@event("test.codec.widget", version=2)
@attrs.frozen(kw_only=True)
class Widget(Event):
    """Version 1 had ``name``; version 2 splits it into ``label`` and ``size``."""

    label: str
    size: int


@upcaster("test.codec.widget", from_version=1)
def _widget_v1_to_v2(payload: Payload) -> Payload:
    return {"label": payload["name"], "size": 0}


EVERY_EVENT: list[Event] = [
    DaemonStarted(version="0.1.0", pid=42, config={"port": 8081, "api_key": "***"}),
    DaemonStopped(reason="signal"),
    ActorCrashed(actor="providers", error_type="KeyError", message="'x'", traceback="Traceback...", restarts=1),
    ActorEscalated(actor="providers", crashes=6, window_s=60.0),
    RequestReceived(
        request_id="req_1",
        session_id="sess",
        path="/v1/messages",
        model="claude-sonnet-4-5",
        stream=True,
        headers={"content-type": "application/json"},
        messages=1,
        tools=(),
        last_user_text="héllo",
        template='{"model":"claude-sonnet-4-5","max_tokens":1024,"messages":[{"role":"user","content":"héllo"}]}'.encode(),
    ),
    RequestRefused(
        request_id="req_2",
        reason="origin",
        method="POST",
        path="/v1/messages",
        origin="https://evil.example",
        host="127.0.0.1:8080",
        content_type=None,
    ),
    UpstreamAttempted(
        request_id="req_1", provider="ollama", attempt=2, status=None, latency_ms=3.5, error="timeout", will_retry=True
    ),
    ResponseCompleted(
        request_id="req_1",
        session_id="sess",
        provider="ollama",
        model="llama3",
        message={"role": "assistant", "content": [{"type": "text", "text": "hi"}], "usage": {"input_tokens": 3}},
        latency_ms=120.0,
    ),
    ResponseFailed(request_id="req_1", session_id="sess", status=529, error_type="overloaded_error", message="busy"),
]


def frame(body: bytes, *, fmt: int = FORMAT_VERSION) -> bytes:
    return struct.pack(">BI", fmt, zlib.crc32(body)) + body


def body_of(fields: Any) -> bytes:
    return bytes(msgpack.packb(fields, use_bin_type=True))


@pytest.mark.parametrize("original", EVERY_EVENT, ids=lambda e: e.TYPE)
def test_every_catalog_event_round_trips(original: Event) -> None:
    data = encode(1_700_000_000_123_456_789, "sess", original)
    assert decode(7, data) == Recorded(seq=7, time_ns=1_700_000_000_123_456_789, stream="sess", event=original)


def test_decode_reads_from_a_memoryview() -> None:
    data = encode(5, "s", DaemonStopped(reason="x"))
    assert decode(1, memoryview(data)).event == DaemonStopped(reason="x")


@pytest.mark.parametrize("original", EVERY_EVENT, ids=lambda e: e.TYPE)
def test_payload_of_matches_to_payload(original: Event) -> None:
    assert payload_of(original) == original.to_payload()


def test_record_layout_is_format_byte_crc_then_msgpack_body() -> None:
    data = encode(9, "s", DaemonStopped(reason="x"))
    fmt, crc = struct.unpack_from(">BI", data)
    assert fmt == PLAIN
    assert crc == zlib.crc32(data[5:])
    assert msgpack.unpackb(data[5:]) == ["daemon.stopped", 1, 9, "s", {"reason": "x"}]


def test_old_version_is_upcast_on_read() -> None:
    data = encode_payload(1, "s", "test.codec.widget", 1, {"name": "gear"})
    assert decode(3, data).event == Widget(label="gear", size=0)


def test_current_version_is_read_as_is() -> None:
    assert decode(1, encode(1, "s", Widget(label="gear", size=5))).event == Widget(label="gear", size=5)


def test_newer_event_version_is_refused_with_a_clear_message() -> None:
    data = encode_payload(1, "s", "test.codec.widget", 3, {"label": "gear", "size": 1, "colour": "red"})
    with pytest.raises(EventFromTheFuture, match=r"version 3.*only up to version 2.*upgrade lynkr"):
        decode(1, data)


def test_newer_record_format_is_refused_not_misread() -> None:
    body = body_of(["daemon.stopped", 1, 1, "s", {"reason": "x"}])
    with pytest.raises(EventFromTheFuture, match="log format 3"):
        decode(4, frame(body, fmt=FORMAT_VERSION + 1))


def test_unknown_topic_raises_unknown_event_type() -> None:
    with pytest.raises(UnknownEventType):
        decode(1, encode_payload(1, "s", "no.such.event", 1, {}))


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x01\x00",
        b"random garbage bytes that are long enough",
        frame(b"\xc1"),  # never-used msgpack byte
        frame(body_of(["daemon.stopped", 1, 1, "s"])),  # four fields
        frame(body_of({"topic": "daemon.stopped"})),
        frame(body_of(["daemon.stopped", "1", 1, "s", {"reason": "x"}])),  # version is a string
        frame(body_of(["daemon.stopped", 1, 1, "s", ["reason"]])),  # payload is a list
        frame(body_of(["daemon.stopped", 1, 1, "s", {"reason": "x", "extra": 1}])),  # does not fit the class
        frame(body_of(["test.codec.widget", 1, 1, "s", {"label": "no name"}])),  # upcaster cannot lift it
        frame(b"\x00", fmt=0),
    ],
)
def test_damaged_records_are_reported_as_corrupt(data: bytes) -> None:
    with pytest.raises(CorruptRecord):
        decode(1, data)


def test_flipped_bit_fails_the_checksum() -> None:
    data = bytearray(encode(1, "s", DaemonStopped(reason="intact")))
    data[-3] ^= 0x01
    with pytest.raises(CorruptRecord, match="checksum"):
        decode(1, bytes(data))


def test_payload_that_is_not_plain_data_cannot_be_encoded() -> None:
    with pytest.raises(ValueError, match="not plain data"):
        encode(1, "s", DaemonStarted(version="1", pid=1, config={"when": object()}))


def test_a_version_1_request_received_is_upcast_to_raw_body_bytes_and_a_brief() -> None:
    body = {
        "model": "claude-sonnet-4-5",
        "messages": [{"role": "user", "content": "first"}, {"role": "user", "content": [{"type": "text", "text": "latest"}]}],
        "tools": [{"name": "Bash"}, {"name": "Read"}],
    }
    v1 = {"request_id": "r", "session_id": "s", "path": "/v1/messages", "model": "claude-sonnet-4-5", "stream": True,
          "headers": {}, "body": body}
    recorded = decode(7, encode_payload(1, "s", "request.received", 1, v1))
    event = recorded.event
    assert isinstance(event, RequestReceived)
    assert (event.messages, event.tools, event.last_user_text) == (2, ("Bash", "Read"), "latest")
    assert event.request() == body


def test_a_batch_encodes_exactly_as_its_events_do_one_by_one() -> None:
    batch = [(f"s{n}", event) for n, event in enumerate(EVERY_EVENT)]
    assert encode_all(7, batch) == [encode(7, stream, event) for stream, event in batch]


def test_topic_filter_turns_down_only_intact_records_of_known_topics_not_asked_for() -> None:
    named = TopicFilter({"response.completed", "daemon.stopped"})
    admitted = [event.TYPE for event in EVERY_EVENT if named.admits(encode(1, "s", event))]
    assert admitted == ["daemon.stopped", "response.completed"]
    assert named.admits(encode_payload(1, "s", "plugin.gone", 1, {}))  # unknown: decoding counts it
    damaged = bytearray(encode(1, "s", DaemonStarted(version="1", pid=1, config={})))
    damaged[-1] ^= 0x01
    assert named.admits(bytes(damaged))  # corrupt: decoding counts it
    assert named.admits(b"\x01\x00") and named.admits(b"\x01\x00\x00\x00\x00\xc1\xc1")
    assert not TopicFilter(()).admits(encode(1, "s", DaemonStopped(reason="x")))


def test_topic_filter_reads_long_topics_and_memoryviews() -> None:
    long_topic = "test.codec." + "x" * 40  # past msgpack's short string form
    assert TopicFilter({long_topic}).admits(encode_payload(1, "s", long_topic, 1, {}))
    assert not TopicFilter({"daemon.stopped"}).admits(memoryview(encode(1, "s", UpstreamAttempted(
        request_id="r", provider="p", attempt=1, status=200, latency_ms=1.0, error=None, will_retry=False
    ))))
    assert TopicFilter({"daemon.stopped"}).admits(memoryview(encode(1, "s", DaemonStopped(reason="x"))))


def test_a_large_record_is_stored_compressed_and_reads_back_the_same() -> None:
    turn = {"role": "user", "content": [{"type": "text", "text": "the same transcript again and again " * 40}]}
    body = orjson.dumps({"model": "m", "max_tokens": 1, "messages": [turn] * 20})
    assert len(body) > COMPRESS_MIN_BYTES
    event = RequestReceived(
        request_id="r", session_id="s", path="/v1/messages", model="m", stream=True, headers={},
        messages=20, tools=(), last_user_text="", template=body,
    )
    data = encode(1, "s", event)
    assert data[0] == COMPRESSED
    assert len(data) * 4 < len(body)
    assert decode(1, data).event == event
    assert TopicFilter(["daemon.stopped"]).admits(data)  # a compressed record is decoded, never guessed at


def test_a_compressed_record_that_does_not_inflate_is_corrupt_not_a_crash() -> None:
    garbage = b"not zlib at all"
    with pytest.raises(CorruptRecord, match="does not inflate"):
        decode(2, struct.pack(">BI", COMPRESSED, zlib.crc32(garbage)) + garbage)
