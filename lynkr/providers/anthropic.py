"""Anthropic itself (or any Anthropic-compatible gateway): ``ANTHROPIC_UPSTREAM_URL``, ``x-api-key``.

Requests pass through almost untouched; the client's ``anthropic-version`` and ``anthropic-beta`` go along.
The upstream key is ``ANTHROPIC_UPSTREAM_API_KEY``, never ``ANTHROPIC_API_KEY``, which users set for Claude
Code itself.
"""

from __future__ import annotations

from lynkr.providers.base import Auth, HttpAdapter, append_path, choose_http2, path_of, static_headers
from lynkr.settings import ProviderConfig, ProviderSettings, ProviderVar, only_at

KIND = "anthropic"
DEFAULT_ENDPOINT = "https://api.anthropic.com/v1/messages"

SETTINGS = ProviderSettings(
    kind=KIND,
    env_prefix="ANTHROPIC_UPSTREAM",
    variables=(
        ProviderVar(var="ANTHROPIC_UPSTREAM_URL", target="endpoint", doc="Anthropic Messages URL.", default=DEFAULT_ENDPOINT),
        ProviderVar(
            var="ANTHROPIC_UPSTREAM_API_KEY",
            target="api_key",
            doc="Key for the upstream (not ANTHROPIC_API_KEY, which Claude Code itself reads).",
        ),
    ),
    endpoint_example=DEFAULT_ENDPOINT,
    key_example="your Anthropic key (sk-ant-...)",
    needs_key=only_at(DEFAULT_ENDPOINT),
)


def messages_url(endpoint: str) -> str:
    """Accept ``https://host``, ``https://host/v1`` or the full ``https://host/v1/messages``."""
    path = path_of(endpoint)
    if path.endswith("/v1/messages"):
        return endpoint
    if path.endswith("/v1"):
        return append_path(endpoint, "messages")
    return append_path(endpoint, "v1/messages")


def build(provider: ProviderConfig) -> HttpAdapter:
    return passthrough_adapter(provider, messages_url(provider.endpoint))


def passthrough_adapter(provider: ProviderConfig, url: str) -> HttpAdapter:
    """An Anthropic-format upstream at ``url``: ``x-api-key``, the client's betas forwarded, count_tokens beside."""
    return HttpAdapter(
        name=provider.name,
        kind=provider.kind,
        wire="anthropic",
        http2=choose_http2(provider.http2, url),
        max_tokens=provider.max_tokens,
        url=url,
        token_count_url=append_path(url, "count_tokens"),
        auth=Auth.X_API_KEY,
        api_key=provider.api_key.reveal() if provider.api_key else None,
        extra_headers=static_headers(provider.options),
        anthropic_version=provider.options.get("api_version"),
        models=provider.models,
        default_model=provider.default_model,
    )
