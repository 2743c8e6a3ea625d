"""Making the log readable: replayed sessions as transcripts, events as lines.  Used by ``replay`` and ``log``."""

from __future__ import annotations

import datetime
import json
from typing import Any

import attrs

from lynkr.events.catalog import RequestReceived
from lynkr.events.projections import SESSIONS, Progress, Session, SessionsState, Turn, replay
from lynkr.events.records import Recorded
from lynkr.events.store import EventStore

TEXT_PREVIEW = 200


@attrs.frozen(kw_only=True)
class ReplayReport:
    events: int
    skipped: int


def replay_sessions(
    store: EventStore, *, stream: str | None = None, progress: Progress | None = None
) -> tuple[dict[str, Session], ReplayReport]:
    """Fold the log, or only ``stream`` through the by-stream index, into sessions."""
    states = replay(store, {"sessions": SESSIONS}, stream=stream, progress=progress)
    sessions: SessionsState = states["sessions"]
    stats = store.stats()
    if stream is None:
        events = stats.events
    else:
        events = sum(summary.events for summary in store.iter_streams() if summary.stream == stream)
    report = ReplayReport(events=events, skipped=stats.skipped_corrupt + stats.skipped_unknown)
    return dict(sessions.sessions.items()), report


def render_transcript(session: Session, *, full: bool, as_json: bool) -> Any:
    if as_json:
        return {
            "session_id": session.session_id,
            "turns": [attrs.asdict(turn, recurse=True) for turn in session.turns],
        }
    lines = [f"session {session.session_id}: {len(session.turns)} turns"]
    for number, turn in enumerate(session.turns, start=1):
        lines.append("")
        lines.extend(_render_turn(number, turn, full=full))
    return "\n".join(lines)


def _render_turn(number: int, turn: Turn, *, full: bool) -> list[str]:
    when = _clock(turn.time_ns)
    lines = [f"── turn {number}  {when}  seq {turn.seq}  {turn.request_id}"]
    if turn.request is not None:
        request = turn.request
        lines.append(
            f"   request   model {request.model}, {request.messages} messages, {len(request.tools)} tools"
            f"{', streaming' if request.stream else ''}"
        )
        if request.last_user_text:
            lines.append(f"   user      {_preview(request.last_user_text, full)}")
    if turn.message is not None:
        latency = f" in {turn.latency_ms:.0f} ms" if turn.latency_ms is not None else ""
        stop = turn.message.get("stop_reason")
        usage = turn.message.get("usage") or {}
        lines.append(
            f"   response  from {turn.provider}{latency}, stop {stop}, "
            f"tokens in {usage.get('input_tokens', 0)} out {usage.get('output_tokens', 0)}"
        )
        for block in turn.message.get("content") or []:
            lines.append(f"   {_render_block(block, full)}")
    elif turn.failure is not None:
        failure = turn.failure
        lines.append(f"   failed    {failure.status} {failure.error_type}: {_preview(failure.message, full)}")
    else:
        lines.append("   (no answer recorded)")
    return lines


def _render_block(block: dict[str, Any], full: bool) -> str:
    kind = block.get("type")
    if kind == "text":
        return f"text      {_preview(str(block.get('text', '')), full)}"
    if kind == "tool_use":
        arguments = json.dumps(block.get("input", {}), ensure_ascii=False)
        return f"tool_use  {block.get('name')} {_preview(arguments, full)}  [{block.get('id')}]"
    if kind == "thinking":
        return f"thinking  {_preview(str(block.get('thinking', '')), full)}"
    return f"{kind}"


def _preview(text: str, full: bool) -> str:
    flat = text.replace("\n", "⏎ ")
    if full or len(flat) <= TEXT_PREVIEW:
        return flat
    return flat[:TEXT_PREVIEW] + f"… ({len(text)} chars)"


def _clock(time_ns: int) -> str:
    moment = datetime.datetime.fromtimestamp(time_ns / 1e9, tz=datetime.timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def render_event_line(recorded: Recorded, *, as_json: bool) -> str:
    event = recorded.event
    payload = event.to_payload()
    if isinstance(event, RequestReceived):
        # The body as the client sent it, not the template and parts it is stored as.
        del payload["template"], payload["parts"]
        payload["body"] = event.body
    if as_json:
        return json.dumps(
            {
                "seq": recorded.seq,
                "time": _clock(recorded.time_ns),
                "type": recorded.event.TYPE,
                "version": recorded.event.VERSION,
                "stream": recorded.stream,
                "payload": payload,
            },
            ensure_ascii=False,
            default=str,
        )
    summary = ", ".join(
        f"{key}={_short(value)}" for key, value in payload.items() if key not in ("body", "headers", "traceback")
    )
    return f"{recorded.seq:>8}  {_clock(recorded.time_ns)}  {recorded.event.TYPE:<20} {recorded.stream}  {summary}"


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 80 else text[:80] + "…"
