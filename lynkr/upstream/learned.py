"""What lynkr has learned about its upstreams' limits from their refusals, kept across restarts.

Every lesson is an event (``limit.learned``, ``betas.unsupported``) recorded under its own stream,
:data:`LIMITS_STREAM`.  :class:`LearnedLimits` is the fold's state: immutable, with a pure ``apply``;
:data:`LEARNED_LIMITS` is that fold as derived state, rebuilt at start-up (from its snapshot and the log's tail)
with everything else derived from the log.  :class:`LimitsBook` holds the current state for the daemon, which
hands it to each incarnation of the provider pool the way it hands over the circuit breakers, so a restarted
pool keeps what the last one learned.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import attrs
import msgpack  # type: ignore[import-untyped]

from lynkr.events.catalog import BetasUnsupported, LimitLearned
from lynkr.events.projections import Projection
from lynkr.events.records import Event, Payload, Recorded

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
            return self.learned(event.provider, event.model, event.kind, event.value)
        if isinstance(event, BetasUnsupported):
            return self.unsupported(event.provider, event.flags)
        return self

    def learned(self, provider: str, model: str, kind: str, value: int) -> LearnedLimits:
        key = (provider, model)
        if kind == OUTPUT:
            return attrs.evolve(self, output={**self.output, key: value})
        if kind == CONTEXT:
            return attrs.evolve(self, context={**self.context, key: value})
        return self

    def unsupported(self, provider: str, flags: Iterable[str]) -> LearnedLimits:
        known = self.unsupported_betas.get(provider, frozenset())
        return attrs.evolve(self, unsupported_betas={**self.unsupported_betas, provider: known | frozenset(flags)})

    def output_ceiling(self, provider: str, model: str) -> int | None:
        return self.output.get((provider, model))

    def context_window(self, provider: str, model: str) -> int | None:
        return self.context.get((provider, model))

    def betas_to_drop(self, provider: str) -> frozenset[str]:
        return self.unsupported_betas.get(provider, frozenset())


def apply_limits_payload(state: LearnedLimits, seq: int, time_ns: int, topic: str, payload: Payload) -> LearnedLimits:
    """:meth:`LearnedLimits.apply` over a record's payload; a damaged payload that still decoded changes nothing."""
    try:
        if topic == LimitLearned.TYPE:
            return state.learned(payload["provider"], payload["model"], payload["kind"], int(payload["value"]))
        if topic == BetasUnsupported.TYPE:
            return state.unsupported(payload["provider"], [str(flag) for flag in payload["flags"]])
    except (KeyError, TypeError, ValueError):
        pass
    return state


def apply_limits_event(state: LearnedLimits, recorded: Recorded) -> LearnedLimits:
    return state.apply(recorded.event)


LEARNED_LIMITS: Projection[LearnedLimits] = Projection(
    initial=LearnedLimits(),
    apply=apply_limits_event,
    topics=frozenset({LimitLearned.TYPE, BetasUnsupported.TYPE}),
    apply_payload=apply_limits_payload,
    stream=LIMITS_STREAM,
)


def encode_limits(state: LearnedLimits) -> bytes:
    encoded: bytes = msgpack.packb(
        [
            [[provider, model, value] for (provider, model), value in state.output.items()],
            [[provider, model, value] for (provider, model), value in state.context.items()],
            [[provider, sorted(flags)] for provider, flags in state.unsupported_betas.items()],
        ],
        use_bin_type=True,
    )
    return encoded


def decode_limits(data: bytes | memoryview) -> LearnedLimits:
    """What :func:`encode_limits` encoded; raises ``ValueError`` (or msgpack's errors) on bytes it did not."""
    output, context, betas = msgpack.unpackb(data)
    return LearnedLimits(
        output={(str(provider), str(model)): int(value) for provider, model, value in output},
        context={(str(provider), str(model)): int(value) for provider, model, value in context},
        unsupported_betas={str(provider): frozenset(str(flag) for flag in flags) for provider, flags in betas},
    )


def describe_limits(state: LearnedLimits) -> str:
    return (
        f"{len(state.output)} output ceilings, {len(state.context)} context windows, "
        f"{sum(len(flags) for flags in state.unsupported_betas.values())} unsupported beta flags"
    )


class LimitsBook:
    """The daemon's current :class:`LearnedLimits`; the provider pool reads it and teaches it."""

    def __init__(self, state: LearnedLimits | None = None) -> None:
        self.state = state or LearnedLimits()

    def learn(self, event: LimitLearned | BetasUnsupported) -> None:
        self.state = self.state.apply(event)
