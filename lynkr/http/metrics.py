"""Prometheus text exposition for request counters and latency histograms.

Hand-rolled rather than a client library: a handful of counters rendered on demand is all we need, and it
keeps the hot path to two dictionary updates.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable

import attrs

LATENCY_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


@attrs.define
class _Histogram:
    counts: list[int] = attrs.Factory(lambda: [0] * (len(LATENCY_BUCKETS_S) + 1))
    total_s: float = 0.0
    observations: int = 0

    def observe(self, seconds: float) -> None:
        self.counts[bisect.bisect_left(LATENCY_BUCKETS_S, seconds)] += 1
        self.total_s += seconds
        self.observations += 1


@attrs.frozen(kw_only=True)
class Sample:
    """One line of exposition: a metric name, its labels and a value."""

    name: str
    value: float
    labels: tuple[tuple[str, str], ...] = ()


class RequestMetrics:
    def __init__(self) -> None:
        self._requests: dict[tuple[str, str, int], int] = {}
        self._latency: dict[str, _Histogram] = {}

    def observe(self, *, route: str, method: str, status: int, seconds: float) -> None:
        key = (route, method, status)
        self._requests[key] = self._requests.get(key, 0) + 1
        histogram = self._latency.get(route)
        if histogram is None:
            histogram = self._latency[route] = _Histogram()
        histogram.observe(seconds)


    def render(self, gauges: Iterable[tuple[str, str, Iterable[Sample]]] = ()) -> str:
        lines = [
            "# HELP lynkr_http_requests_total HTTP requests answered, by route, method and status.",
            "# TYPE lynkr_http_requests_total counter",
        ]
        for (route, method, status), count in sorted(self._requests.items()):
            lines.append(
                f'lynkr_http_requests_total{{route="{route}",method="{method}",status="{status}"}} {count}'
            )
        lines += [
            "# HELP lynkr_http_request_duration_seconds Time from request to the last byte of the response.",
            "# TYPE lynkr_http_request_duration_seconds histogram",
        ]
        for route, histogram in sorted(self._latency.items()):
            cumulative = 0
            for bound, count in zip((*LATENCY_BUCKETS_S, float("inf")), histogram.counts):
                cumulative += count
                le = "+Inf" if bound == float("inf") else f"{bound:g}"
                lines.append(f'lynkr_http_request_duration_seconds_bucket{{route="{route}",le="{le}"}} {cumulative}')
            lines.append(f'lynkr_http_request_duration_seconds_sum{{route="{route}"}} {histogram.total_s:.6f}')
            lines.append(f'lynkr_http_request_duration_seconds_count{{route="{route}"}} {histogram.observations}')
        for name, kind_and_help, samples in gauges:
            kind, _, help_text = kind_and_help.partition(" ")
            lines.append(f"# HELP {name} {help_text}")
            lines.append(f"# TYPE {name} {kind}")
            for sample in samples:
                labels = ",".join(f'{key}="{value}"' for key, value in sample.labels)
                lines.append(f"{sample.name}{{{labels}}} {sample.value:g}" if labels else f"{sample.name} {sample.value:g}")
        return "\n".join(lines) + "\n"
