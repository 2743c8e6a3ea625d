"""A per-provider circuit breaker.  Pure: the caller passes the clock in."""

from __future__ import annotations

import attrs


@attrs.define
class CircuitBreaker:
    """Closed until ``failure_threshold`` consecutive failures, then open for ``reset_s``.

    After that one trial request is let through (half-open); its outcome closes or re-opens the breaker.
    """

    failure_threshold: int
    reset_s: float
    failures: int = 0
    opened_at: float | None = None
    trial_in_flight: bool = False

    def allows(self, now: float) -> bool:
        if self.opened_at is None:
            return True
        if now - self.opened_at < self.reset_s or self.trial_in_flight:
            return False
        self.trial_in_flight = True
        return True

    def succeeded(self) -> None:
        self.failures = 0
        self.opened_at = None
        self.trial_in_flight = False

    def failed(self, now: float) -> None:
        self.failures += 1
        self.trial_in_flight = False
        if self.failures >= self.failure_threshold:
            self.opened_at = now

    @property
    def state(self) -> str:
        if self.opened_at is None:
            return "closed"
        return "half-open" if self.trial_in_flight else "open"
