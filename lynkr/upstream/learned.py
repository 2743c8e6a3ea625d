"""What lynkr has learned about its upstreams' limits from their refusals, kept across restarts.

Every lesson is an event (``limit.learned``, ``betas.unsupported``) recorded under its own stream,
:data:`LIMITS_STREAM`, so start-up folds just those records through the log's by-stream index instead of
reading the whole log.  :class:`LearnedLimits` is the fold's state: immutable, with a pure ``apply``.
:class:`LimitsBook` holds the current state for the daemon, which hands it to each incarnation of the provider
pool the way it hands over the circuit breakers, so a restarted pool keeps what the last one learned.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import attrs

from lynkr.events.catalog import BetasUnsupported, LimitLearned
from lynkr.events.records import Event, Recorded
from lynkr.events.store import EventStore

LIMITS_STREAM = "limits"
OUTPUT = "output"
CONTEXT = "context"

ModelKey = tuple[str, str]  # (provider, upstream model)


@attrs.frozen(kw_only=True)
class LearnedLimits:
    output: Mapping[ModelKey, int] = attrs.field(factory=dict)
    context: Mapping[ModelKey, int] = attrs.field(factory=dict)
    unsupported_betas: Mapping[str, frozenset[str]] = attrs.field(factory=dict)

    def apply(self, event: Event) -> LearnedLimits:
        """The state after ``event``; the newest lesson about a limit replaces older ones."""
        if isinstance(event, LimitLearned):
            key = (event.provider, event.model)
            if event.kind == OUTPUT:
                return attrs.evolve(self, output={**self.output, key: event.value})
            if event.kind == CONTEXT:
                return attrs.evolve(self, context={**self.context, key: event.value})
            return self
        if isinstance(event, BetasUnsupported):
            known = self.unsupported_betas.get(event.provider, frozenset())
            return attrs.evolve(
                self, unsupported_betas={**self.unsupported_betas, event.provider: known | frozenset(event.flags)}
            )
        return self

    def output_ceiling(self, provider: str, model: str) -> int | None:
        return self.output.get((provider, model))

    def context_window(self, provider: str, model: str) -> int | None:
        return self.context.get((provider, model))

    def betas_to_drop(self, provider: str) -> frozenset[str]:
        return self.unsupported_betas.get(provider, frozenset())


def fold(records: Iterable[Recorded], state: LearnedLimits | None = None) -> LearnedLimits:
    state = state or LearnedLimits()
    for record in records:
        state = state.apply(record.event)
    return state


class LimitsBook:
    """The daemon's current :class:`LearnedLimits`; the provider pool reads it and teaches it."""

    def __init__(self, state: LearnedLimits | None = None) -> None:
        self.state = state or LearnedLimits()

    @classmethod
    def from_log(cls, store: EventStore) -> LimitsBook:
        """Fold the lessons in ``store``: only the limits stream is read, however long the log."""
        return cls(fold(store.read(stream=LIMITS_STREAM)))

    def learn(self, event: LimitLearned | BetasUnsupported) -> None:
        self.state = self.state.apply(event)
