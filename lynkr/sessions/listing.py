"""``lynkr sessions``: every session with its turns, tokens, estimated cost, models and last activity.

The listing is the sessions fold as start-up builds it (the newest valid snapshot plus the log's tail), read
through a read-only handle, so it works while the daemon runs and never writes to its log.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import attrs

from lynkr.datadir import open_log_readonly
from lynkr.events.catalog import CACHE_PROVIDER
from lynkr.events.projections import Session, SessionsState
from lynkr.events.snapshots import SESSIONS_STATE, rebuild
from lynkr.upstream.prices import estimated_cost

NS_PER_S = 1_000_000_000


@attrs.frozen(kw_only=True)
class SessionSummary:
    """One session, as ``lynkr sessions`` shows it."""

    session_id: str
    turns: int
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_creation_tokens: int
    cost_usd: float | None  # None: a model without a known price answered
    models: tuple[str, ...]  # the upstream models that answered, in the order first used
    providers: tuple[str, ...]  # the upstreams that answered (not the prompt cache)
    cache_hits: int
    upstream_ms: float
    first_activity_ns: int
    last_activity_ns: int
    compacted: bool  # its requests and responses were dropped by `lynkr log compact`; the totals remain

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens + self.cache_read_tokens + self.cache_creation_tokens

    def as_json(self) -> dict[str, Any]:
        return {**attrs.asdict(self), "models": list(self.models), "providers": list(self.providers),
                "tokens": self.tokens}


def summarise(session: Session, provider_kinds: Mapping[str, str]) -> SessionSummary:
    """``session``'s totals; prompt-cache hits add answers but no tokens spent upstream, and cost nothing."""
    upstream = [use for use in session.uses if use.provider != CACHE_PROVIDER]
    return SessionSummary(
        session_id=session.session_id,
        turns=session.turn_count,
        input_tokens=sum(use.input_tokens for use in upstream),
        output_tokens=sum(use.output_tokens for use in upstream),
        cache_read_tokens=sum(use.cache_read_tokens for use in upstream),
        cache_creation_tokens=sum(use.cache_creation_tokens for use in upstream),
        cost_usd=estimated_cost(session.uses, provider_kinds),
        models=tuple(dict.fromkeys(use.model for use in session.uses)),
        providers=tuple(dict.fromkeys(use.provider for use in upstream)),
        cache_hits=sum(use.answers for use in session.uses if use.provider == CACHE_PROVIDER),
        upstream_ms=sum(use.upstream_ms for use in upstream),
        first_activity_ns=session.first_time_ns,
        last_activity_ns=session.last_time_ns,
        compacted=session.compacted,
    )


def load_sessions(data_dir: Path) -> SessionsState:
    """The sessions fold of the log in ``data_dir``, from its snapshot and tail; read-only."""
    with open_log_readonly(data_dir) as store:
        state: SessionsState = rebuild(store, (SESSIONS_STATE,)).states[SESSIONS_STATE.name]
    return state


def newest_first(
    state: SessionsState, provider_kinds: Mapping[str, str], *, limit: int | None = None
) -> list[SessionSummary]:
    sessions = sorted(state.sessions.values(), key=lambda s: (s.last_time_ns, s.last_seq), reverse=True)
    if limit is not None:
        sessions = sessions[:limit]
    return [summarise(session, provider_kinds) for session in sessions]


def render(summaries: Iterable[SessionSummary], *, now_ns: int | None = None) -> str:
    """A table for a terminal: one line per session, newest first."""
    now_ns = time.time_ns() if now_ns is None else now_ns
    rows = [("SESSION", "TURNS", "TOKENS IN/OUT", "COST", "MODELS", "LAST ACTIVITY")]
    for summary in summaries:
        tokens_in = summary.input_tokens + summary.cache_read_tokens + summary.cache_creation_tokens
        models = ", ".join(summary.models) or "-"
        last = ago(summary.last_activity_ns, now_ns)
        notes = [note for note, shown in (("compacted", summary.compacted),
                                          (f"{summary.cache_hits} cached", summary.cache_hits > 0)) if shown]
        rows.append((
            summary.session_id,
            str(summary.turns),
            f"{short_count(tokens_in)} / {short_count(summary.output_tokens)}",
            dollars(summary.cost_usd),
            models,
            last + (f"  ({', '.join(notes)})" if notes else ""),
        ))
    if len(rows) == 1:
        return "no sessions recorded yet"
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]) - 1)]
    right = {1, 2, 3}
    lines = []
    for row in rows:
        cells = [cell.rjust(width) if column in right else cell.ljust(width)
                 for column, (cell, width) in enumerate(zip(row, widths))]
        lines.append("  ".join([*cells, row[-1]]))
    return "\n".join(lines)


def dollars(cost: float | None) -> str:
    if cost is None:
        return "unknown"
    if cost == 0:
        return "$0"
    return f"${cost:.4f}" if cost < 1 else f"${cost:,.2f}"


def short_count(count: int) -> str:
    """1234 -> "1.2k", 2_500_000 -> "2.5M": a person reads token counts to two figures."""
    if count < 1000:
        return str(count)
    if count < 1_000_000:
        return f"{count / 1000:.1f}k"
    return f"{count / 1_000_000:.1f}M"


def ago(then_ns: int, now_ns: int) -> str:
    """How long ago, as a person says it; a date beyond a week."""
    seconds = max(0, (now_ns - then_ns) // NS_PER_S)
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{seconds // 60} min ago"
    if seconds < 86400:
        return f"{seconds // 3600} h ago"
    if seconds < 7 * 86400:
        days = seconds // 86400
        return "yesterday" if days == 1 else f"{days} days ago"
    return time.strftime("%Y-%m-%d", time.localtime(then_ns / NS_PER_S))
