"""When to retry an upstream attempt, and how long to wait first."""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Mapping

RETRYABLE_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504, 529})
# A client error about the request itself would fail the same way on any provider.
NO_FALLBACK_STATUSES = frozenset({400, 413, 422})


def backoff_s(attempt: int, *, initial_s: float, max_s: float, rng: random.Random | None = None) -> float:
    """Exponential backoff with full jitter for retry number ``attempt`` (1-based)."""
    ceiling = min(max_s, initial_s * 2.0 ** (attempt - 1))
    return (rng or random).uniform(ceiling / 2, ceiling)


def retry_after_s(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """The wait an upstream asked for via ``retry-after-ms`` or ``retry-after`` (seconds or an HTTP date)."""
    millis = headers.get("retry-after-ms")
    if millis is not None:
        try:
            return max(0.0, float(millis) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))
