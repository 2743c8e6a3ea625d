"""Routing rules beside the provider pool: model globs, small, thinking and long-context thresholds."""

from __future__ import annotations

from pathlib import Path

from lynkr.config import RouteRule
from lynkr.upstream.routing import chain, route
from tests.conftest import make_config, write_toml

TOML = """
model_provider = "primary"
[providers.primary]
kind = "openai"
endpoint = "http://127.0.0.1:9/v1"
fallback = ["backup", "long"]
[providers.backup]
kind = "openai"
endpoint = "http://127.0.0.1:9/v1"
fallback = ["primary"]
[providers.long]
kind = "openai"
endpoint = "http://127.0.0.1:9/v1"
[[routes]]
model = "claude-haiku-*"
provider = "backup"
[[routes]]
min_input_tokens = 50000
provider = "long"
[[routes]]
small = false
thinking = true
provider = "backup"
"""


def _never_asked() -> int:
    raise AssertionError("the estimate was worked out though no rule needed it")


def test_rules_are_read_from_toml_with_their_threshold(tmp_path: Path) -> None:
    write_toml(tmp_path, TOML)
    config = make_config(tmp_path)
    assert config.routes == (
        RouteRule(provider="backup", model="claude-haiku-*"),
        RouteRule(provider="long", min_input_tokens=50000),
        RouteRule(provider="backup", small=False, thinking=True),
    )


def test_the_first_matching_rule_names_the_provider(tmp_path: Path) -> None:
    write_toml(tmp_path, TOML)
    config = make_config(tmp_path)

    def go(model: str, *, small: bool = False, thinking: bool = False, tokens: int = 10) -> str | None:
        return route(
            config.routes, config.model_provider, model, small=small, thinking=thinking, input_tokens=lambda: tokens
        )

    assert go("claude-haiku-4-5", small=True) == "backup"
    assert go("claude-sonnet-4-5", tokens=50001) == "long"
    assert go("claude-sonnet-4-5", tokens=50000) == "primary", "the threshold is exceeded, not reached"
    assert go("claude-sonnet-4-5", thinking=True) == "backup"
    assert go("claude-sonnet-4-5", small=True, thinking=True) == "primary"
    assert (
        route(config.routes[:1], "primary", "claude-haiku-4-5", small=True, thinking=False, input_tokens=_never_asked)
        == "backup"
    )


def test_the_chain_is_the_provider_then_its_available_fallbacks_once(tmp_path: Path) -> None:
    write_toml(tmp_path, TOML)
    config = make_config(tmp_path)
    assert chain(config, "primary", lambda name: True) == ["primary", "backup", "long"]
    assert chain(config, "primary", lambda name: name != "backup") == ["primary", "long"]
    assert chain(config, "backup", lambda name: True) == ["backup", "primary"]
