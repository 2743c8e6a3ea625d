"""Fitting a request to one provider's limits, and what a refusal about a limit changes.  Sans-IO.

Before an attempt, :func:`fit` clamps ``max_tokens`` to the provider's output ceiling (configured, else learned,
else built in for the model's family), keeps it inside a known context window, drops the ``anthropic-beta``
flags the provider does not take, and answers :class:`TooLong` when the input alone cannot fit the window.
After a refusal, :func:`react` turns what the upstream said (:mod:`lynkr.upstream.limits`) into the lessons to
record and either the request to send once more or the verdict that the provider cannot hold the input.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs

from lynkr.errors import InvalidRequest
from lynkr.events.catalog import BetasUnsupported, LimitLearned
from lynkr.providers.base import Adapter
from lynkr.upstream.ceilings import builtin_output_ceiling
from lynkr.upstream.learned import CONTEXT, OUTPUT, LearnedLimits
from lynkr.upstream.limits import ContextOverflow, OutputCeiling, RejectedBetas, Rejection
from lynkr.wire.tokens import estimate_tokens

if TYPE_CHECKING:
    from lynkr.config import Config, ProviderConfig

CONTEXT_WINDOW_OPTION = "context_window"
DROP_BETAS_OPTION = "drop_betas"
BETA_HEADER = "anthropic-beta"
# Extended thinking needs max_tokens above its budget, and a budget of at least this (the API's minimum).
MIN_THINKING_BUDGET = 1024

Lesson = LimitLearned | BetasUnsupported


class InvalidProviderOption(ValueError):
    """A provider option this module reads has a value it cannot use; the message says which and what to set."""


@attrs.frozen(kw_only=True)
class ProviderLimits:
    """What the configuration says about one provider's limits."""

    context_window: int | None = None
    drop_betas: frozenset[str] = frozenset()

    @classmethod
    def from_provider(cls, provider: ProviderConfig) -> ProviderLimits:
        raw_window = provider.options.get(CONTEXT_WINDOW_OPTION)
        window = None
        if raw_window is not None:
            try:
                window = int(raw_window.strip().replace("_", ""))
            except ValueError:
                window = 0
            if window < 1:
                raise InvalidProviderOption(
                    f"providers.{provider.name}.options.{CONTEXT_WINDOW_OPTION} = {raw_window!r} is not a positive "
                    f'number of tokens; set it like {CONTEXT_WINDOW_OPTION} = "128000"'
                )
        raw_betas = provider.options.get(DROP_BETAS_OPTION, "")
        betas = frozenset(flag.strip() for flag in raw_betas.split(",") if flag.strip())
        return cls(context_window=window, drop_betas=betas)


def limits_for(config: Config) -> dict[str, ProviderLimits]:
    """Each provider's configured limits; raises :class:`InvalidProviderOption` for a value it cannot use."""
    return {name: ProviderLimits.from_provider(provider) for name, provider in config.providers.items()}


class InputEstimate:
    """A request's estimated input tokens, worked out at most once and only when something asks."""

    def __init__(self, request: Mapping[str, Any]) -> None:
        self._request = request
        self._tokens: int | None = None

    @property
    def tokens(self) -> int:
        if self._tokens is None:
            self._tokens = estimate_tokens(self._request)
        return self._tokens


@attrs.frozen(kw_only=True)
class Fitted:
    """The request and headers to send to one provider, and what was decided to get there."""

    provider: str
    model: str  # the upstream model name
    request: Mapping[str, Any]
    headers: Mapping[str, str]
    max_tokens: int


@attrs.frozen(kw_only=True)
class TooLong:
    """The request's input does not fit this provider's context window."""

    provider: str
    window: int | None  # None when the upstream refused without naming it


def fit(
    provider: str,
    adapter: Adapter,
    configured: ProviderLimits,
    learned: LearnedLimits,
    request: Mapping[str, Any],
    headers: Mapping[str, str],
    *,
    small: bool,
    estimate: InputEstimate,
) -> Fitted | TooLong:
    model = adapter.upstream_model(str(request["model"]), small=small)
    window = _smallest(configured.context_window, learned.context_window(provider, model))
    if window is not None and estimate.tokens >= window:
        return TooLong(provider=provider, window=window)
    requested = int(request["max_tokens"])
    max_tokens = requested
    ceiling = _output_ceiling(provider, adapter, learned, model)
    if ceiling is not None:
        max_tokens = min(max_tokens, ceiling)
    if window is not None:
        max_tokens = min(max_tokens, window - estimate.tokens)
    return Fitted(
        provider=provider,
        model=model,
        request=request if max_tokens == requested else with_max_tokens(request, max_tokens),
        headers=_without_betas(headers, configured.drop_betas | learned.betas_to_drop(provider)),
        max_tokens=max_tokens,
    )


def _output_ceiling(provider: str, adapter: Adapter, learned: LearnedLimits, model: str) -> int | None:
    """Configured, else built in for the family; a learned one lowers either.

    The built-in table is for OpenAI-compatible APIs, which refuse a larger request.  Anthropic-native upstreams
    serve Claude models, which it does not list, and Ollama's own API caps the output instead of refusing.
    """
    base = adapter.max_tokens
    if base is None and adapter.wire == "openai":
        base = builtin_output_ceiling(model)
    return _smallest(base, learned.output_ceiling(provider, model))


def _smallest(*values: int | None) -> int | None:
    known = [value for value in values if value is not None]
    return min(known) if known else None


def with_max_tokens(request: Mapping[str, Any], max_tokens: int) -> dict[str, Any]:
    """``request`` asking for ``max_tokens``, with a thinking budget that still fits under it."""
    out = {**request, "max_tokens": max_tokens}
    thinking = request.get("thinking")
    if isinstance(thinking, Mapping) and thinking.get("type") == "enabled":
        budget = thinking.get("budget_tokens")
        if isinstance(budget, int) and budget >= max_tokens:
            if max_tokens - 1 >= MIN_THINKING_BUDGET:
                out["thinking"] = {**thinking, "budget_tokens": max_tokens - 1}
            else:
                out.pop("thinking")
    return out


def _beta_key(headers: Mapping[str, str]) -> str | None:
    return next((name for name in headers if name.lower() == BETA_HEADER), None)


def beta_flags(headers: Mapping[str, str]) -> tuple[str, ...]:
    """The ``anthropic-beta`` flags in ``headers``, in order."""
    key = _beta_key(headers)
    return () if key is None else tuple(flag.strip() for flag in headers[key].split(",") if flag.strip())


def _without_betas(headers: Mapping[str, str], drop: frozenset[str]) -> Mapping[str, str]:
    key = _beta_key(headers) if drop else None  # nothing to drop, nothing to look for: the common case
    if key is None:
        return headers
    flags = beta_flags(headers)
    kept = tuple(flag for flag in flags if flag not in drop)
    if kept == flags:
        return headers
    out = {name: value for name, value in headers.items() if name != key}
    if kept:
        out[BETA_HEADER] = ",".join(kept)
    return out


@attrs.frozen(kw_only=True)
class Retry:
    """Send ``fitted`` to the same provider once more; record ``lessons`` first."""

    fitted: Fitted
    lessons: tuple[Lesson, ...]
    kind: str  # which limit: "output", "context" or "betas"; each is retried at most once per provider


@attrs.frozen(kw_only=True)
class MoveOn:
    """The input does not fit this provider: no retry here; the next provider in the chain may hold it."""

    too_long: TooLong
    lessons: tuple[Lesson, ...]


def react(fitted: Fitted, rejection: Rejection) -> Retry | MoveOn | None:
    """What to do about a refusal that names a limit; None when nothing sent would change."""
    provider, model = fitted.provider, fitted.model
    if isinstance(rejection, OutputCeiling):
        if rejection.limit >= fitted.max_tokens or rejection.limit < 1:
            return None
        lesson = LimitLearned(provider=provider, model=model, kind=OUTPUT, value=rejection.limit)
        return Retry(fitted=_clamped(fitted, rejection.limit), lessons=(lesson,), kind=OUTPUT)
    if isinstance(rejection, ContextOverflow):
        lessons: tuple[Lesson, ...] = ()
        if rejection.window is not None:
            lessons = (LimitLearned(provider=provider, model=model, kind=CONTEXT, value=rejection.window),)
        room = rejection.output_room()
        if room is not None and room < fitted.max_tokens:
            return Retry(fitted=_clamped(fitted, room), lessons=lessons, kind=CONTEXT)
        return MoveOn(too_long=TooLong(provider=provider, window=rejection.window), lessons=lessons)
    return _without_rejected_betas(fitted, rejection)


def _clamped(fitted: Fitted, max_tokens: int) -> Fitted:
    return attrs.evolve(fitted, request=with_max_tokens(fitted.request, max_tokens), max_tokens=max_tokens)


def _without_rejected_betas(fitted: Fitted, rejection: RejectedBetas) -> Retry | None:
    # An upstream that does not say which flag it refused ("invalid beta flag") refused one of those sent;
    # without a way to tell which, all of them are dropped and remembered.
    sent = beta_flags(fitted.headers)
    rejected = frozenset(rejection.flags or sent)
    if not rejected & frozenset(sent):
        return None
    lesson = BetasUnsupported(provider=fitted.provider, flags=tuple(sorted(rejected)))
    headers = _without_betas(fitted.headers, rejected)
    return Retry(fitted=attrs.evolve(fitted, headers=headers), lessons=(lesson,), kind="betas")


def too_long_error(too_long: Sequence[TooLong], estimate: int) -> InvalidRequest:
    """The client's error when no provider in the chain can hold the input: each window and the estimate."""
    windows = ", ".join(
        f"{item.provider} ({item.window} tokens)" if item.window is not None else f"{item.provider} (window not stated)"
        for item in too_long
    )
    return InvalidRequest(
        f"the request's input is about {estimate} tokens (lynkr's estimate), more than the context window of "
        f"every provider that could take it: {windows}; shorten the conversation (/compact in Claude Code), or "
        f"send long requests to a provider with a larger window ([[routes]] with min_input_tokens)"
    )
