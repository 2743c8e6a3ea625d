"""Fitting a request to a provider's limits, and the reaction to a refusal that names one.  Sans-IO."""

from __future__ import annotations

from typing import Any

import pytest

from lynkr.config import ProviderConfig
from lynkr.events.catalog import BetasUnsupported, LimitLearned
from lynkr.providers.base import Adapter
from lynkr.providers.registry import adapter_for
from lynkr.upstream.fitting import (
    Fitted,
    InputEstimate,
    InvalidProviderOption,
    MoveOn,
    ProviderLimits,
    Retry,
    TooLong,
    fit,
    react,
    too_long_error,
)
from lynkr.upstream.learned import LearnedLimits
from lynkr.upstream.limits import ContextOverflow, OutputCeiling, RejectedBetas
from lynkr.wire.tokens import estimate_tokens

REQUEST: dict[str, Any] = {
    "model": "claude-sonnet-4-5",
    "max_tokens": 32000,
    "messages": [{"role": "user", "content": "hello there"}],
}


def _adapter(kind: str = "openai", model: str = "gpt-4o", max_tokens: int | None = None, **options: str) -> Adapter:
    endpoint = {"openai": "http://127.0.0.1:9/v1", "anthropic": "http://127.0.0.1:9"}[kind]
    return adapter_for(
        ProviderConfig(
            name="up", kind=kind, endpoint=endpoint, models={"main": model}, max_tokens=max_tokens, options=options
        )
    )


def _fit(
    adapter: Adapter,
    request: dict[str, Any] = REQUEST,
    *,
    configured: ProviderLimits | None = None,
    learned: LearnedLimits | None = None,
    headers: dict[str, str] | None = None,
) -> Fitted | TooLong:
    return fit(
        "up",
        adapter,
        configured or ProviderLimits(),
        learned or LearnedLimits(),
        request,
        headers or {},
        small=False,
        estimate=InputEstimate(request),
    )


def _fitted(result: Fitted | TooLong) -> Fitted:
    assert isinstance(result, Fitted), result
    return result


def test_builtin_ceiling_clamps_an_openai_compatible_model() -> None:
    fitted = _fitted(_fit(_adapter(model="gpt-4o")))
    assert (fitted.model, fitted.max_tokens, fitted.request["max_tokens"]) == ("gpt-4o", 16384, 16384)
    assert REQUEST["max_tokens"] == 32000, "the client's request is never changed in place"


def test_a_configured_ceiling_replaces_the_builtin_one() -> None:
    assert _fitted(_fit(_adapter(model="gpt-4o", max_tokens=20000))).max_tokens == 20000


def test_a_learned_ceiling_lowers_the_configured_and_builtin_ones() -> None:
    learned = LearnedLimits(output={("up", "gpt-4o"): 4096})
    assert _fitted(_fit(_adapter(model="gpt-4o", max_tokens=20000), learned=learned)).max_tokens == 4096
    assert _fitted(_fit(_adapter(model="gpt-4o"), learned=learned)).max_tokens == 4096


def test_an_unknown_model_keeps_what_the_client_asked_for() -> None:
    fitted = _fitted(_fit(_adapter(model="gpt-test")))
    assert fitted.request is REQUEST


def test_anthropic_upstreams_get_no_builtin_ceiling() -> None:
    assert _fitted(_fit(_adapter(kind="anthropic", model="gpt-4o"))).max_tokens == 32000


def test_clamping_below_a_thinking_budget_lowers_the_budget() -> None:
    request = {**REQUEST, "thinking": {"type": "enabled", "budget_tokens": 20000}}
    fitted = _fitted(_fit(_adapter(model="gpt-4o"), request))
    assert fitted.request["thinking"] == {"type": "enabled", "budget_tokens": 16383}


def test_a_known_window_holds_the_output_to_what_fits_beside_the_input() -> None:
    estimate = estimate_tokens(REQUEST)
    configured = ProviderLimits(context_window=estimate + 1000)
    assert _fitted(_fit(_adapter(model="gpt-test"), configured=configured)).max_tokens == 1000


def test_an_input_larger_than_the_window_is_too_long() -> None:
    window = estimate_tokens(REQUEST) - 1
    learned = LearnedLimits(context={("up", "gpt-test"): window})
    assert _fit(_adapter(model="gpt-test"), learned=learned) == TooLong(provider="up", window=window)


def test_dropped_betas_leave_the_header_and_the_others_stay() -> None:
    headers = {"anthropic-beta": "claude-code-20250219, new-flag-2026-11-01,other", "x-other": "1"}
    configured = ProviderLimits(drop_betas=frozenset({"other"}))
    learned = LearnedLimits(unsupported_betas={"up": frozenset({"new-flag-2026-11-01"})})
    fitted = _fitted(_fit(_adapter(kind="anthropic"), configured=configured, learned=learned, headers=headers))
    assert fitted.headers == {"x-other": "1", "anthropic-beta": "claude-code-20250219"}
    untouched = {"anthropic-beta": "claude-code-20250219"}
    assert _fitted(_fit(_adapter(kind="anthropic"), configured=configured, headers=untouched)).headers is untouched
    only = _fitted(_fit(_adapter(kind="anthropic"), learned=learned, headers={"anthropic-beta": "new-flag-2026-11-01"}))
    assert "anthropic-beta" not in only.headers


def test_provider_options_give_the_window_and_the_flags_to_drop() -> None:
    provider = ProviderConfig(
        name="up", kind="openai", endpoint="http://x", options={"context_window": "128_000", "drop_betas": "a, b"}
    )
    assert ProviderLimits.from_provider(provider) == ProviderLimits(
        context_window=128000, drop_betas=frozenset({"a", "b"})
    )
    broken = ProviderConfig(name="up", kind="openai", endpoint="http://x", options={"context_window": "lots"})
    with pytest.raises(InvalidProviderOption, match=r"providers\.up\.options\.context_window = 'lots'"):
        ProviderLimits.from_provider(broken)


def test_an_output_ceiling_refusal_retries_clamped_and_teaches_the_limit() -> None:
    fitted = _fitted(_fit(_adapter(model="gpt-test")))
    reaction = react(fitted, OutputCeiling(limit=16384))
    assert isinstance(reaction, Retry)
    assert reaction.fitted.request["max_tokens"] == 16384
    assert reaction.lessons == (LimitLearned(provider="up", model="gpt-test", kind="output", value=16384),)


def test_a_ceiling_no_lower_than_what_was_sent_changes_nothing() -> None:
    fitted = _fitted(_fit(_adapter(model="gpt-4o")))
    assert react(fitted, OutputCeiling(limit=16384)) is None


def test_an_input_that_fits_retries_with_the_output_room() -> None:
    fitted = _fitted(_fit(_adapter(model="gpt-test")))
    reaction = react(fitted, ContextOverflow(window=32768, input_tokens=24000))
    assert isinstance(reaction, Retry)
    assert reaction.fitted.max_tokens == 8768
    assert reaction.lessons == (LimitLearned(provider="up", model="gpt-test", kind="context", value=32768),)


def test_an_input_that_does_not_fit_moves_on() -> None:
    fitted = _fitted(_fit(_adapter(model="gpt-test")))
    reaction = react(fitted, ContextOverflow(window=8192, input_tokens=9000))
    assert reaction == MoveOn(
        too_long=TooLong(provider="up", window=8192),
        lessons=(LimitLearned(provider="up", model="gpt-test", kind="context", value=8192),),
    )
    assert react(fitted, ContextOverflow(window=None, input_tokens=None)) == MoveOn(
        too_long=TooLong(provider="up", window=None), lessons=()
    )


def test_named_rejected_betas_are_dropped_and_remembered() -> None:
    headers = {"anthropic-beta": "claude-code-20250219,new-flag"}
    fitted = _fitted(_fit(_adapter(kind="anthropic"), headers=headers))
    reaction = react(fitted, RejectedBetas(flags=("new-flag",)))
    assert isinstance(reaction, Retry)
    assert reaction.fitted.headers == {"anthropic-beta": "claude-code-20250219"}
    assert reaction.lessons == (BetasUnsupported(provider="up", flags=("new-flag",)),)


def test_an_unnamed_beta_refusal_drops_every_flag_sent() -> None:
    fitted = _fitted(_fit(_adapter(kind="anthropic"), headers={"anthropic-beta": "b,a"}))
    reaction = react(fitted, RejectedBetas(flags=()))
    assert isinstance(reaction, Retry)
    assert "anthropic-beta" not in reaction.fitted.headers
    assert reaction.lessons == (BetasUnsupported(provider="up", flags=("a", "b")),)
    assert react(reaction.fitted, RejectedBetas(flags=())) is None, "nothing left to drop"


def test_the_too_long_error_names_each_window_and_the_estimate() -> None:
    error = too_long_error([TooLong(provider="a", window=8192), TooLong(provider="b", window=None)], 12345)
    body = error.body("req_1")
    assert (error.status, body["error"]["type"]) == (400, "invalid_request_error")
    assert "about 12345 tokens" in body["error"]["message"]
    assert "a (8192 tokens), b (window not stated)" in body["error"]["message"]
