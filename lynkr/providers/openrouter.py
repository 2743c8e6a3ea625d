"""OpenRouter: ``https://openrouter.ai/api/v1/chat/completions``, Bearer, OpenAI chat format.

OpenRouter attributes traffic to an app by ``HTTP-Referer`` and ``X-Title``; options ``app_url`` and
``app_title`` change what lynkr sends.
"""

from __future__ import annotations

from lynkr.providers.base import (
    Auth,
    HttpAdapter,
    choose_http2,
    parse_bool_option,
    parse_tool_id_scheme,
    static_headers,
)
from lynkr.providers.openai import chat_completions_url
from lynkr.settings import ProviderConfig, ProviderSettings, ProviderVar

KIND = "openrouter"
DEFAULT_ENDPOINT = "https://openrouter.ai/api/v1/chat/completions"
DEFAULT_APP_URL = "http://localhost"
DEFAULT_APP_TITLE = "lynkr"

SETTINGS = ProviderSettings(
    kind=KIND,
    env_prefix="OPENROUTER",
    variables=(
        ProviderVar(var="OPENROUTER_API_KEY", target="api_key", doc="OpenRouter API key."),
        ProviderVar(var="OPENROUTER_MODEL", target="model", doc="OpenRouter model, e.g. anthropic/claude-sonnet-4.5."),
        ProviderVar(var="OPENROUTER_ENDPOINT", target="endpoint", doc="OpenRouter chat URL.", default=DEFAULT_ENDPOINT),
    ),
    endpoint_example=DEFAULT_ENDPOINT,
    key_example="your OpenRouter key (sk-or-...)",
)


def build(provider: ProviderConfig) -> HttpAdapter:
    url = chat_completions_url(provider.endpoint)
    attribution = {
        "HTTP-Referer": provider.options.get("app_url", DEFAULT_APP_URL),
        "X-Title": provider.options.get("app_title", DEFAULT_APP_TITLE),
    }
    return HttpAdapter(
        name=provider.name,
        kind=provider.kind,
        wire="openai",
        http2=choose_http2(provider.http2, url),
        max_tokens=provider.max_tokens,
        url=url,
        auth=Auth.BEARER,
        api_key=provider.api_key.reveal() if provider.api_key else None,
        extra_headers={**attribution, **static_headers(provider.options)},
        models=provider.models,
        default_model=provider.default_model,
        tool_id_scheme=parse_tool_id_scheme(provider.options),
        reasoning=parse_bool_option(provider.options, "reasoning"),
    )
