"""Ollama's native ``POST {endpoint}/api/chat`` (NDJSON stream, wire "ollama").

No auth locally; a configured key (Ollama's hosted service, or a proxy in front) goes as a Bearer token.
"""

from __future__ import annotations

from lynkr.providers.base import (
    Auth,
    HttpAdapter,
    append_path,
    choose_http2,
    parse_bool_option,
    path_of,
    static_headers,
)
from lynkr.settings import ProviderConfig, ProviderSettings, ProviderVar, Requirement, never

KIND = "ollama"
DEFAULT_ENDPOINT = "http://localhost:11434"

SETTINGS = ProviderSettings(
    kind=KIND,
    env_prefix="OLLAMA",
    variables=(
        ProviderVar(var="OLLAMA_ENDPOINT", target="endpoint", doc="Ollama server URL.", default=DEFAULT_ENDPOINT),
        ProviderVar(var="OLLAMA_MODEL", target="model", doc="Ollama model, e.g. qwen2.5-coder."),
    ),
    endpoint_example=DEFAULT_ENDPOINT,
    key_example="the key your Ollama proxy expects",
    needs_key=never,
    requires=(
        Requirement(
            target="model",
            noun="model",
            example="a model you have pulled, like qwen2.5-coder",
            toml_example='"qwen2.5-coder"',
        ),
    ),
)


def chat_url(endpoint: str) -> str:
    if path_of(endpoint).endswith("/api/chat"):
        return endpoint
    return append_path(endpoint, "api/chat")


def build(provider: ProviderConfig) -> HttpAdapter:
    url = chat_url(provider.endpoint)
    return HttpAdapter(
        name=provider.name,
        kind=provider.kind,
        wire="ollama",
        http2=choose_http2(provider.http2, url),
        max_tokens=provider.max_tokens,
        url=url,
        auth=Auth.BEARER,
        api_key=provider.api_key.reveal() if provider.api_key else None,
        extra_headers=static_headers(provider.options),
        models=provider.models,
        default_model=provider.default_model,
        # `think = "true"` in the provider's options: the model reasons, and Claude Code's thinking turns it on.
        reasoning=bool(parse_bool_option(provider.options, "think")),
    )
