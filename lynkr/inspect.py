"""Making the log readable: the sessions folded from it (``replay``'s list) and events as lines (``log``).

One session turn by turn is :mod:`lynkr.replay`."""

from __future__ import annotations

import datetime
import json
from typing import Any

import attrs

from lynkr.events.catalog import RequestReceived
from lynkr.events.projections import SESSIONS, Progress, Session, SessionsState, replay
from lynkr.events.records import Recorded
from lynkr.events.store import EventStore
from lynkr.upstream.recording import UpstreamResponded


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
    elif isinstance(event, UpstreamResponded):
        # The bytes themselves are blobs (`lynkr replay SESSION --check` reads them); show where, and the reads.
        del payload["body"], payload["sent"]
        payload.update(reads=list(event.read_sizes), digest=event.digest.hex(), sent_digest=event.sent_digest.hex())
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
