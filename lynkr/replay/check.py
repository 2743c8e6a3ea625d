"""``lynkr replay SESSION --check``: recorded upstream answers through today's conversion, compared with the past.

For every attempt whose answer was read to its end, the recorded bytes go through the live path's own sans-IO
code: the parser :class:`lynkr.wire.streams.Conversion` builds (fed the same reads, in the same pieces, or the one
JSON body), folded by :class:`lynkr.wire.anthropic.MessageAssembler` into the message as the log keeps it
(:func:`lynkr.wire.anthropic.message_as_logged`).  That message is compared, field by field, with the
``response.completed`` the pool recorded for the attempt: the message the client received.  A streaming client's
SSE, kept beside the answer, is compared too, event by event, with the events today's conversion yields (what
the live path frames for the client; an Anthropic-native upstream's own events pass through as they are).  Each
difference is a line naming the turn, the attempt and the path: inside the message (``content[0].text``) or
inside the event stream (``sse[3].data.delta.text``).

An attempt's ``response.completed`` is the first one after its ``upstream.responded`` from the same provider for
the same request: the pool records the two in that order from one task, and an agent loop's rounds run one after
another.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import attrs
import orjson

from lynkr.errors import UpstreamError
from lynkr.events.catalog import ResponseCompleted
from lynkr.events.transcript import MissingBlob
from lynkr.replay.gather import SessionLog, TurnLog
from lynkr.upstream.recording import UpstreamResponded
from lynkr.wire.anthropic import MessageAssembler, message_as_logged
from lynkr.wire.sse import SSEDecoder
from lynkr.wire.streams import convert_body
from lynkr.wire.types import StreamEvent

VALUE_PREVIEW = 80
SSE_DIFFERENCES_SHOWN = 10  # per answer: one change early in a stream shifts every event after it


class _Missing:
    def __repr__(self) -> str:
        return "(absent)"


MISSING: Any = _Missing()


@attrs.frozen(kw_only=True)
class Difference:
    turn: int
    request_id: str
    provider: str
    attempt: int
    path: str  # inside the message, e.g. "content[0].text"; "" for the whole answer
    recorded: Any  # what the client received
    now: Any  # what today's conversion makes of the same bytes

    def line(self) -> str:
        where = self.path or "(the answer)"
        return (
            f"turn {self.turn} ({self.request_id}) {self.provider} attempt {self.attempt}: {where}: "
            f"client got {_show(self.recorded)}, now {_show(self.now)}"
        )


@attrs.frozen(kw_only=True)
class CheckReport:
    checked: int  # answers converted and compared
    differences: list[Difference]
    notes: list[str]  # turns with nothing to compare, and why


def check_session(session: SessionLog) -> CheckReport:
    differences: list[Difference] = []
    notes: list[str] = []
    checked = 0
    for number, turn in enumerate(session.turns, start=1):
        compared, turn_notes = _check_turn(number, turn, differences)
        checked += compared
        notes.extend(turn_notes)
    return CheckReport(checked=checked, differences=differences, notes=notes)


def _check_turn(number: int, turn: TurnLog, differences: list[Difference]) -> tuple[int, list[str]]:
    label = f"turn {number} ({turn.request_id})"
    notes: list[str] = []
    complete = [(seq, answer) for seq, answer in turn.answers if answer.complete]
    for _, answer in turn.answers:
        if not answer.complete:
            notes.append(f"{label}: {answer.provider} attempt {answer.attempt} broke off mid-answer; not compared")
    if not complete:
        if turn.cache_hit is not None:
            notes.append(f"{label}: answered from the prompt cache; no upstream bytes to check")
        elif turn.failure is not None and not turn.answers:
            notes.append(f"{label}: failed ({turn.failure.status} {turn.failure.error_type}); no answer to check")
        elif not turn.answers:
            notes.append(f"{label}: no upstream bytes recorded (logged before lynkr recorded them); not checked")
        return 0, notes
    used: set[int] = set()
    compared = 0
    for seq, answer in complete:
        completion = _completion_for(turn, seq, answer, used)
        if completion is None:
            notes.append(
                f"{label}: {answer.provider} attempt {answer.attempt} answered, but the client got no message "
                f"(an error or a disconnect); not compared"
            )
            continue
        compared += 1
        differences.extend(
            Difference(
                turn=number, request_id=turn.request_id, provider=answer.provider, attempt=answer.attempt,
                path=path, recorded=then, now=now,
            )
            for path, then, now in _compare(answer, completion.message)
        )
    return compared, notes


def _completion_for(turn: TurnLog, after: int, answer: UpstreamResponded, used: set[int]) -> ResponseCompleted | None:
    for seq, completion in turn.completions:
        if seq > after and seq not in used and completion.provider == answer.provider:
            used.add(seq)
            return completion
    return None


def _compare(answer: UpstreamResponded, received: dict[str, Any]) -> Iterator[tuple[str, Any, Any]]:
    try:
        events = convert_body(answer.conversion, answer.read_pieces(), streamed=answer.streamed)
    except MissingBlob as error:
        yield "", "the recorded bytes", f"missing from the log: {error}"
        return
    except (UpstreamError, ValueError) as error:
        yield "", "a message", f"conversion fails: {type(error).__name__}: {error}"
        return
    assembler = MessageAssembler()
    for event in events:
        assembler.feed(event)
    yield from differences(received, message_as_logged(assembler))
    try:
        sent = answer.client_sse()
    except MissingBlob as error:
        yield "sse", "the SSE sent", f"missing from the log: {error}"
        return
    if sent is not None:
        yield from _sse_differences(sent, events)


def _sse_differences(sent: bytes, events: list[StreamEvent]) -> Iterator[tuple[str, Any, Any]]:
    decoder = SSEDecoder()
    then = [{"event": e.event, "data": _json_or_text(e.data)} for e in [*decoder.feed(sent), *decoder.close()]]
    now = [{"event": event["type"], "data": event} for event in events]
    found = list(differences(then, now, "sse"))
    if len(then) != len(now):
        yield "sse", f"{len(then)} events", f"{len(now)} events"
    yield from found[:SSE_DIFFERENCES_SHOWN]
    if len(found) > SSE_DIFFERENCES_SHOWN:
        yield "sse", "…", f"{len(found) - SSE_DIFFERENCES_SHOWN} more differences in the events"


def _json_or_text(data: str) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return data


def differences(then: Any, now: Any, path: str = "") -> Iterator[tuple[str, Any, Any]]:
    """Every leaf where ``then`` and ``now`` differ, as ``(path, then, now)``; a missing key is :data:`MISSING`."""
    if isinstance(then, dict) and isinstance(now, dict):
        for key in [*then, *(key for key in now if key not in then)]:
            inner = f"{path}.{key}" if path else str(key)
            yield from differences(then.get(key, MISSING), now.get(key, MISSING), inner)
    elif isinstance(then, (list, tuple)) and isinstance(now, (list, tuple)):
        for index in range(max(len(then), len(now))):
            yield from differences(
                then[index] if index < len(then) else MISSING,
                now[index] if index < len(now) else MISSING,
                f"{path}[{index}]",
            )
    elif then is MISSING or now is MISSING or type(then) is not type(now) or then != now:
        yield path, then, now


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= VALUE_PREVIEW else text[:VALUE_PREVIEW] + f"… ({len(text)} chars)"
