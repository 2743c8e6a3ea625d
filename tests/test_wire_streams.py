from __future__ import annotations

import json
from collections.abc import Mapping

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lynkr.wire.anthropic import UpstreamStreamError
from lynkr.wire.streams import AnthropicStream
from lynkr.wire.types import StreamEvent


def _sse(name: str, payload: Mapping[str, object]) -> bytes:
    # ensure_ascii, as the real API and the test fakes write it: re-encoding would change these bytes.
    return f"event: {name}\ndata: {json.dumps(payload)}\n\n".encode()


STREAM = b"".join(
    [
        _sse("message_start", {"type": "message_start", "message": {"id": "msg_1", "model": "m", "content": []}}),
        b": keep-alive comment\n\n",
        _sse("content_block_start", {"type": "content_block_start", "index": 0,
                                     "content_block": {"type": "text", "text": ""}}),
        _sse("ping", {"type": "ping"}),
        _sse("content_block_delta", {"type": "content_block_delta", "index": 0,
                                     "delta": {"type": "text_delta", "text": "h\u00e9llo \u2603\n"}}),
        _sse("content_block_stop", {"type": "content_block_stop", "index": 0}),
        _sse("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn"},
                               "usage": {"output_tokens": 3}}),
        _sse("message_stop", {"type": "message_stop"}),
    ]
)


def _feed_in_pieces(data: bytes, cuts: list[int]) -> tuple[list[StreamEvent], list[bytes | None]]:
    parser = AnthropicStream()
    events: list[StreamEvent] = []
    forwarded: list[bytes | None] = []
    start = 0
    for cut in [*sorted(set(cuts)), len(data)]:
        got, verbatim = parser.feed_verbatim(data[start:cut])
        events += got
        forwarded.append(verbatim)
        start = cut
    events += parser.close()
    return events, forwarded


def test_verbatim_bytes_are_the_upstreams_own_and_events_are_parsed_beside_them() -> None:
    events, forwarded = _feed_in_pieces(STREAM, [])
    assert forwarded == [STREAM]
    assert [event["type"] for event in events] == [
        "message_start", "content_block_start", "ping", "content_block_delta", "content_block_stop",
        "message_delta", "message_stop",
    ]
    assert events[3]["delta"] == {"type": "text_delta", "text": "h\u00e9llo \u2603\n"}  # type: ignore[typeddict-item]


@given(st.lists(st.integers(min_value=0, max_value=len(STREAM)), max_size=12))
def test_any_chunking_forwards_whole_events_only_and_every_byte_once(cuts: list[int]) -> None:
    events, forwarded = _feed_in_pieces(STREAM, cuts)
    assert all(piece is not None for piece in forwarded)
    pieces = [piece for piece in forwarded if piece]
    assert b"".join(pieces) == STREAM
    assert all(piece.endswith(b"\n\n") for piece in pieces)  # never half an event
    assert len(events) == 7


def test_crlf_streams_are_parsed_by_the_general_decoder_and_re_encoded() -> None:
    data = STREAM.replace(b"\n", b"\r\n")
    parser = AnthropicStream()
    first, verbatim = parser.feed_verbatim(data[:40])
    rest, later = parser.feed_verbatim(data[40:])
    assert (verbatim, later) == (None, None)
    assert [event["type"] for event in first + rest + parser.close()][-1] == "message_stop"


def test_a_byte_order_mark_split_across_reads_is_dropped() -> None:
    events, forwarded = _feed_in_pieces(b"\xef\xbb\xbf" + STREAM, [1, 2])
    assert events[0]["type"] == "message_start"
    assert b"".join(piece for piece in forwarded if piece) == STREAM


def test_multi_line_data_and_data_without_a_space_are_joined() -> None:
    parser = AnthropicStream()
    events, _ = parser.feed_verbatim(b'id: 7\ndata:{"type":\ndata: "ping"}\n\n')
    assert events == [{"type": "ping"}]


def test_an_unterminated_final_event_is_still_read_at_close() -> None:
    parser = AnthropicStream()
    events, verbatim = parser.feed_verbatim(b'event: message_stop\ndata: {"type":"message_stop"}')
    assert (events, verbatim) == ([], b"")
    assert parser.close() == [{"type": "message_stop"}]


def test_an_error_event_raises_with_the_upstreams_type_and_status() -> None:
    parser = AnthropicStream()
    error = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    with pytest.raises(UpstreamStreamError) as raised:
        parser.feed_verbatim(_sse("error", error))
    assert (raised.value.upstream_status, raised.value.upstream_type) == (529, "overloaded_error")


def test_a_stream_cut_before_message_stop_is_an_error_at_close() -> None:
    parser = AnthropicStream()
    parser.feed_verbatim(STREAM[: STREAM.index(b"event: message_delta")])
    with pytest.raises(UpstreamStreamError, match="before message_stop"):
        parser.close()
