"""Claude in Azure AI Foundry: ``https://{resource}.services.ai.azure.com/anthropic/v1/messages``, ``x-api-key``.

Anthropic format, passed through.  ``AZURE_ANTHROPIC_VERSION`` (option ``api_version``) pins the
``anthropic-version`` header; without it the client's version is forwarded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lynkr.providers.base import Auth, HttpAdapter, append_path, choose_http2, path_of, static_headers

if TYPE_CHECKING:
    from lynkr.config import ProviderConfig

KIND = "azure-anthropic"


def messages_url(endpoint: str) -> str:
    """Accept the full ``.../anthropic/v1/messages`` URL, or the resource or ``/anthropic`` base."""
    path = path_of(endpoint)
    if path.endswith("/v1/messages"):
        return endpoint
    if path.endswith("/anthropic/v1"):
        return append_path(endpoint, "messages")
    if path.endswith("/anthropic"):
        return append_path(endpoint, "v1/messages")
    return append_path(endpoint, "anthropic/v1/messages")


def build(provider: ProviderConfig) -> HttpAdapter:
    url = messages_url(provider.endpoint)
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
