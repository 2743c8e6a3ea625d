"""Which provider a request goes to, and which ones it falls back to.

The ``[[routes]]`` rules (plain :class:`~lynkr.config.RouteRule` records) are tried in order; the first that
matches names the provider, else the configured ``model_provider`` takes it.  The chain is that provider and
then its ``fallback`` list, in order, without repeats.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lynkr.config import Config, RouteRule


def rule_matches(
    rule: RouteRule, model: str, *, small: bool, thinking: bool, input_tokens: Callable[[], int]
) -> bool:
    """Unset conditions match anything.  ``input_tokens`` is asked only when the rule has a threshold."""
    if rule.model is not None and not fnmatch.fnmatchcase(model, rule.model):
        return False
    if rule.small is not None and rule.small != small:
        return False
    if rule.thinking is not None and rule.thinking != thinking:
        return False
    return rule.min_input_tokens is None or input_tokens() > rule.min_input_tokens


def route(
    routes: Sequence[RouteRule],
    default: str | None,
    model: str,
    *,
    small: bool,
    thinking: bool,
    input_tokens: Callable[[], int],
) -> str | None:
    """The provider name for a request: the first matching rule's, else ``default``."""
    for rule in routes:
        if rule_matches(rule, model, small=small, thinking=thinking, input_tokens=input_tokens):
            return rule.provider
    return default


def chain(config: Config, first: str, available: Callable[[str], bool]) -> list[str]:
    """``first``, then its fallbacks that are ``available``, each once."""
    names = [first]
    for name in config.providers[first].fallback:
        if name not in names and available(name):
            names.append(name)
    return names
