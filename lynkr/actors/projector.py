"""The projector: keeps the derived state (sessions, the prompt cache's table, learned limits, the splice table,
and whatever else registers) live, and snapshots it.

The daemon rebuilds every :class:`~lynkr.events.snapshots.DerivedState` from the log before it reports ready
and hands the result to this actor as a :class:`LiveState`.  The actor then folds each record the recorder
commits, in sequence order, so ``LiveState.states`` is always the fold of the log up to ``LiveState.last_seq``;
other actors read it there.  Folding a record costs microseconds, so it happens on the trio thread.

It subscribes before it catches up from the log, so nothing committed in between is missed, and skips what
it has already folded.  If it falls so far behind that the recorder drops it, it subscribes again and catches
up from the log the same way.  Every ``interval_s`` (when something changed), and when it stops, it writes
snapshots in a worker thread; every state is immutable, so encoding it there is safe while folding goes on.
(The prompt cache actor keeps a mutable table of its own for O(1) hits; the projector folds the same events into
an immutable one, :class:`~lynkr.cache.lru.CacheFold`, which is what gets snapshotted.)
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import attrs
import trio

from lynkr.actors.recorder import Hub, waiting
from lynkr.events.projections import replay
from lynkr.events.records import Recorded
from lynkr.events.snapshots import DerivedState, SnapshottingStore, save_snapshots

log = logging.getLogger("lynkr.actors")

LIVE_BUFFER = 4096  # records a slow projector may lag behind before it is dropped and catches up from the log


@attrs.define
class LiveState:
    """The folded state of every derived projection, as of ``last_seq``.  Read it; only the projector writes."""

    states: dict[str, Any]
    last_seq: int
    snapshot_seq: int = 0  # the seq the newest snapshot written by this daemon reflects


async def run(
    store: SnapshottingStore,
    hub: Hub,
    derived: Sequence[DerivedState[Any]],
    live: LiveState,
    *,
    interval_s: float,
    buffer: int = LIVE_BUFFER,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    # Per topic, the folds that read it (and the stream each is restricted to), worked out once per topic.
    routes: dict[str, list[tuple[str, Callable[[Any, Recorded], Any], str | None]]] = {}

    def route(topic: str) -> list[tuple[str, Callable[[Any, Recorded], Any], str | None]]:
        found = routes[topic] = [
            (d.name, d.projection.apply, d.projection.stream)
            for d in derived
            if d.projection.topics is None or topic in d.projection.topics
        ]
        return found

    ready = False
    try:
        while True:
            with hub.subscribe(buffer) as records:
                await _catch_up(store, derived, live)
                if not ready:
                    task_status.started()
                    ready = True
                next_snapshot = trio.current_time() + interval_s
                while True:
                    with trio.move_on_at(next_snapshot if interval_s > 0 else float("inf")):
                        try:
                            first = await records.receive()
                        except trio.EndOfChannel:
                            break
                        for recorded in (first, *waiting(records)):
                            if recorded.seq > live.last_seq:
                                states = live.states
                                topic = recorded.event.TYPE
                                targets = routes.get(topic)
                                for name, apply, stream in route(topic) if targets is None else targets:
                                    if stream is None or stream == recorded.stream:
                                        states[name] = apply(states[name], recorded)
                                live.last_seq = recorded.seq
                        continue
                    if live.last_seq > live.snapshot_seq:
                        await _snapshot(store, derived, live)
                    next_snapshot = trio.current_time() + interval_s
            log.warning("the projector fell behind the recorder; catching up from the log")
    finally:
        with trio.CancelScope(shield=True):
            if live.last_seq > live.snapshot_seq:
                await _snapshot(store, derived, live)


async def _catch_up(store: SnapshottingStore, derived: Sequence[DerivedState[Any]], live: LiveState) -> None:
    resume = {d.name: (live.states[d.name], live.last_seq) for d in derived}
    end = await trio.to_thread.run_sync(store.last_seq)
    if end > live.last_seq:
        folds = {d.name: d.projection for d in derived}
        live.states = await trio.to_thread.run_sync(lambda: replay(store, folds, resume=resume, end=end))
        live.last_seq = end


async def _snapshot(store: SnapshottingStore, derived: Sequence[DerivedState[Any]], live: LiveState) -> None:
    states, last_seq = dict(live.states), live.last_seq
    try:
        await trio.to_thread.run_sync(save_snapshots, store, derived, states, last_seq)
    except Exception:
        # A snapshot is only a cache: failing to write one costs start-up time, never correctness.
        log.exception("could not write snapshots at seq %d", last_seq)
    else:
        live.snapshot_seq = last_seq
