"""Built-in output-token ceilings of well-known model families, kept as data in ``ceilings.toml``.

The table is read once, on first use.  See the TOML file for how names are matched.
"""

from __future__ import annotations

import fnmatch
import functools
import re
import tomllib
from collections.abc import Iterator, Mapping
from typing import TypeVar
from importlib import resources

_TAIL_START = re.compile(r"[-_.]")

V = TypeVar("V")


@functools.cache
def output_ceilings() -> Mapping[str, int]:
    """Pattern -> ceiling, as the data file lists them."""
    data = tomllib.loads(resources.files("lynkr.upstream").joinpath("ceilings.toml").read_text("utf-8"))
    return {pattern.lower(): int(limit) for pattern, limit in data["output"].items()}


@functools.lru_cache(maxsize=256)
def builtin_output_ceiling(model: str) -> int | None:
    """The output ceiling of ``model``'s family, or None when the table does not know it.

    Cached: a daemon sees a handful of model names, and each request asks again.
    """
    return most_specific(output_ceilings(), model)


def most_specific(table: Mapping[str, V], model: str) -> V | None:
    """The value of the most specific pattern in ``table`` (fewest wildcards, longest) that matches ``model``."""
    best: tuple[int, V] | None = None
    names = list(name_candidates(model))
    for pattern, value in table.items():
        if any(fnmatch.fnmatchcase(name, pattern) for name in names):
            specificity = len(pattern) - pattern.count("*") - pattern.count("?")
            if best is None or specificity > best[0]:
                best = (specificity, value)
    return best[1] if best is not None else None


def name_candidates(model: str) -> Iterator[str]:
    """The name without router prefix, then each tail that starts after a separator ("prod-gpt-4o" -> "gpt-4o")."""
    name = model.rsplit("/", 1)[-1].lower()
    yield name
    for match in _TAIL_START.finditer(name):
        if match.end() < len(name):
            yield name[match.end() :]
