"""Estimated cost of a session's answers, from the list prices kept as data in ``prices.toml``.

The sessions fold counts tokens per provider and upstream model; the price is applied only when someone asks
for a cost.  So the fold (and its snapshots) never changes when a price does, and a model the table does not
know makes a cost unknown rather than wrong.  See the TOML file for how names are matched.
"""

from __future__ import annotations

import functools
import tomllib
from collections.abc import Iterable, Mapping
from importlib import resources

import attrs

from lynkr.events.catalog import CACHE_PROVIDER
from lynkr.events.projections import ModelUse
from lynkr.upstream.ceilings import most_specific

LOCAL_KINDS = frozenset({"ollama"})  # provider kinds that run on the user's machine: their answers cost nothing


@attrs.frozen
class Price:
    """US dollars per million tokens."""

    input: float
    output: float
    cache_read: float
    cache_write: float

    def of(self, use: ModelUse) -> float:
        return (
            use.input_tokens * self.input
            + use.output_tokens * self.output
            + use.cache_read_tokens * self.cache_read
            + use.cache_creation_tokens * self.cache_write
        ) / 1_000_000


FREE = Price(0.0, 0.0, 0.0, 0.0)


@functools.cache
def price_table() -> Mapping[str, Price]:
    """Pattern -> price, as the data file lists them."""
    data = tomllib.loads(resources.files("lynkr.upstream").joinpath("prices.toml").read_text("utf-8"))
    table: dict[str, Price] = {}
    for pattern, rates in data["per_million_tokens"].items():
        input_rate, output_rate, cache_read, cache_write = (float(rate) for rate in rates)
        table[pattern.lower()] = Price(input_rate, output_rate, cache_read, cache_write)
    return table


@functools.lru_cache(maxsize=256)
def listed_price(model: str) -> Price | None:
    """The list price of ``model``, or None when the table does not know it."""
    return most_specific(price_table(), model)


def price_of(use: ModelUse, provider_kinds: Mapping[str, str]) -> Price | None:
    """What ``use``'s tokens cost per million: nothing for cache hits and local providers, else the list price.

    ``provider_kinds`` maps the configured providers' names to their kinds; a provider that is no longer
    configured is priced by its model alone.
    """
    if use.provider == CACHE_PROVIDER or provider_kinds.get(use.provider) in LOCAL_KINDS:
        return FREE
    return listed_price(use.model)


def estimated_cost(uses: Iterable[ModelUse], provider_kinds: Mapping[str, str]) -> float | None:
    """The US dollars ``uses`` cost at list prices; None when any of them used a model without a known price."""
    total = 0.0
    for use in uses:
        price = price_of(use, provider_kinds)
        if price is None:
            return None
        total += price.of(use)
    return total
