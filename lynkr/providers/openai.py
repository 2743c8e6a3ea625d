"""OpenAI, or any OpenAI-compatible chat completions server (vLLM, llama.cpp, LM Studio, LiteLLM ...).

``OPENAI_ENDPOINT`` may be the full ``.../chat/completions`` URL or a base such as ``http://host:8000/v1``.
Bearer auth when a key is configured; local servers often need none.
"""

from __future__ import annotations

from lynkr.providers.base import (
    Auth,
    HttpAdapter,
    append_path,
    choose_http2,
    parse_bool_option,
    parse_tool_id_scheme,
    path_of,
    static_headers,
)
from lynkr.settings import ProviderConfig, ProviderSettings, ProviderVar, only_at

KIND = "openai"
DEFAULT_ENDPOINT = "https://api.openai.com/v1/chat/completions"

SETTINGS = ProviderSettings(
    kind=KIND,
    env_prefix="OPENAI",
    variables=(
        ProviderVar(var="OPENAI_API_KEY", target="api_key", doc="OpenAI (or compatible server) API key."),
        ProviderVar(var="OPENAI_MODEL", target="model", doc="Model name, e.g. gpt-4.1."),
        ProviderVar(
            var="OPENAI_ENDPOINT",
            target="endpoint",
            doc="Chat completions URL, or a base like http://host:8000/v1.",
            default=DEFAULT_ENDPOINT,
        ),
    ),
    endpoint_example=DEFAULT_ENDPOINT,
    key_example="your OpenAI key (sk-...)",
    needs_key=only_at(DEFAULT_ENDPOINT),
)


def chat_completions_url(endpoint: str) -> str:
    """Full URL as given; a bare host gets ``/v1/chat/completions``; any other base gets ``/chat/completions``."""
    path = path_of(endpoint)
    if path.endswith("/chat/completions"):
        return endpoint
    if not path:
        return append_path(endpoint, "v1/chat/completions")
    return append_path(endpoint, "chat/completions")


def build(provider: ProviderConfig) -> HttpAdapter:
    url = chat_completions_url(provider.endpoint)
    return HttpAdapter(
        name=provider.name,
        kind=provider.kind,
        wire="openai",
        http2=choose_http2(provider.http2, url),
        max_tokens=provider.max_tokens,
        url=url,
        auth=Auth.BEARER,
        api_key=provider.api_key.reveal() if provider.api_key else None,
        extra_headers=static_headers(provider.options),
        models=provider.models,
        default_model=provider.default_model,
        tool_id_scheme=parse_tool_id_scheme(provider.options),
        reasoning=parse_bool_option(provider.options, "reasoning"),
    )
