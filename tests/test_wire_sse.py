from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lynkr.wire.sse import (
    NDJSONDecoder,
    ServerSentEvent,
    SSEDataReader,
    SSEDecoder,
    StreamDecodeError,
    encode_event,
    encode_events,
)


def _decode_in_pieces(data: bytes, cuts: list[int]) -> list[ServerSentEvent]:
    decoder = SSEDecoder()
    events: list[ServerSentEvent] = []
    start = 0
    for cut in sorted(set(cuts)):
        events += decoder.feed(data[start:cut])
        start = cut
    events += decoder.feed(data[start:])
    return events + decoder.close()


def test_encode_event_is_compact_utf8_with_an_event_line() -> None:
    event = {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "héllo\n\"x\" ☃"}}
    encoded = encode_event(event)
    assert encoded.startswith(b"event: content_block_delta\ndata: {")
    assert encoded.endswith(b"}\n\n")
    assert encoded.count(b"\n") == 3  # newlines inside strings stay escaped
    assert "☃".encode() in encoded
    assert b'"index":0' in encoded
    [decoded] = _decode_in_pieces(encoded, [])
    assert decoded.event == "content_block_delta"
    assert json.loads(decoded.data) == event


def test_decoder_handles_crlf_cr_and_lf_line_endings() -> None:
    data = b"event: a\r\ndata: 1\r\n\r\nevent: b\rdata: 2\r\rdata: 3\n\n"
    events = _decode_in_pieces(data, [])
    assert [(e.event, e.data) for e in events] == [("a", "1"), ("b", "2"), (None, "3")]


def test_crlf_split_between_two_reads_is_one_line_ending() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: x\r") == []
    assert decoder.feed(b"\n") == []
    assert decoder.feed(b"\r\n") == [ServerSentEvent(event=None, data="x")]


def test_multi_line_data_is_joined_with_newlines() -> None:
    [event] = _decode_in_pieces(b"data: first\ndata:second\ndata\n\n", [])
    assert event.data == "first\nsecond\n"


def test_comments_and_retry_lines_are_skipped() -> None:
    data = b": OPENROUTER PROCESSING\n\n: OPENROUTER PROCESSING\n\nretry: 100\ndata: {\"a\":1}\nid: 7\n\n"
    assert _decode_in_pieces(data, []) == [ServerSentEvent(event=None, data='{"a":1}', id="7")]


def test_an_event_without_data_is_not_dispatched() -> None:
    assert _decode_in_pieces(b"event: ping\n\n", []) == []


def test_a_leading_byte_order_mark_is_ignored() -> None:
    [event] = _decode_in_pieces("\ufeffdata: x\n\n".encode(), [])
    assert event.data == "x"


def test_close_dispatches_an_unterminated_final_event() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\n\ndata: [DONE]") == [ServerSentEvent(event=None, data="a")]
    assert decoder.close() == [ServerSentEvent(event=None, data="[DONE]")]


@given(
    texts=st.lists(st.text(max_size=20), min_size=1, max_size=5),
    cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=12),
    newline=st.sampled_from([b"\n", b"\r\n", b"\r"]),
)
def test_any_chunking_gives_the_same_events(texts: list[str], cuts: list[int], newline: bytes) -> None:
    body = b"".join(
        b": keep-alive" + newline + b"event: e" + newline + b"data: " + json.dumps(text, ensure_ascii=False).encode()
        + newline + newline
        for text in texts
    )
    events = _decode_in_pieces(body, cuts)
    assert [json.loads(event.data) for event in events] == texts
    assert all(event.event == "e" for event in events)


def test_a_utf8_sequence_split_across_reads_survives() -> None:
    data = "data: ☃€\n\n".encode()
    for cut in range(len(data)):
        assert _decode_in_pieces(data, [cut]) == [ServerSentEvent(event=None, data="☃€")]


def test_ndjson_decoder_parses_lines_across_reads_and_skips_blank_lines() -> None:
    decoder = NDJSONDecoder()
    assert decoder.feed(b'{"a": 1}\n\n  \n{"b": "\xe2') == [{"a": 1}]
    assert decoder.feed(b'\x98\x83"}\n{"c"') == [{"b": "☃"}]
    assert decoder.feed(b": 3}") == []
    assert decoder.close() == [{"c": 3}]
    assert decoder.close() == []


def test_ndjson_decoder_names_the_bad_line() -> None:
    decoder = NDJSONDecoder()
    with pytest.raises(StreamDecodeError, match="not JSON") as caught:
        decoder.feed(b'{"ok": true}\n<html>502 Bad Gateway</html>\n')
    assert "502 Bad Gateway" in caught.value.message
    assert caught.value.status == 502


def _read_in_pieces(data: bytes, cuts: list[int]) -> tuple[list[bytes | str], list[bytes | None]]:
    reader = SSEDataReader()
    payloads: list[bytes | str] = []
    forwarded: list[bytes | None] = []
    start = 0
    for cut in [*sorted(set(cuts)), len(data)]:
        got, complete = reader.feed(data[start:cut])
        payloads += got
        forwarded.append(complete)
        start = cut
    return payloads + reader.close(), forwarded


@given(
    texts=st.lists(st.text(max_size=20), min_size=1, max_size=5),
    cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=12),
    newline=st.sampled_from([b"\n", b"\r\n", b"\r"]),
    named=st.booleans(),
)
def test_data_reader_agrees_with_the_general_decoder_on_any_chunking(
    texts: list[str], cuts: list[int], newline: bytes, named: bool
) -> None:
    body = b"".join(
        b": keep-alive" + newline + (b"event: e" + newline if named else b"") + b"data: "
        + json.dumps(text, ensure_ascii=False).encode() + newline + newline
        for text in texts
    )
    payloads, forwarded = _read_in_pieces(body, cuts)
    assert [json.loads(payload) for payload in payloads] == texts
    as_text = [payload if isinstance(payload, str) else payload.decode() for payload in payloads]
    assert as_text == [event.data for event in _decode_in_pieces(body, [])]
    if newline == b"\n":
        assert b"".join(piece for piece in forwarded if piece) == body  # LF streams: every byte, once, whole events


def test_data_reader_hands_openai_style_payloads_over_as_bytes() -> None:
    payloads, forwarded = _read_in_pieces(b'data: {"a":1}\n\ndata:[DONE]\n\n', [9])
    assert payloads == [b'{"a":1}', b"[DONE]"]
    assert forwarded == [b"", b'data: {"a":1}\n\ndata:[DONE]\n\n']


def test_encode_events_frames_each_event_as_encode_event_does() -> None:
    events = [{"type": "message_start", "message": {"id": "m"}}, {"type": "ping"}, {"type": "message_stop"}]
    assert encode_events(events) == b"".join(encode_event(event) for event in events)  # type: ignore[arg-type]
