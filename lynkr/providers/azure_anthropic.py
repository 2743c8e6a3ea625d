"""Claude in Azure AI Foundry: ``https://{resource}.services.ai.azure.com/anthropic/v1/messages``, ``x-api-key``.

Anthropic format, passed through.  ``AZURE_ANTHROPIC_VERSION`` (option ``api_version``) pins the
``anthropic-version`` header; without it the client's version is forwarded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lynkr.providers.anthropic import passthrough_adapter
from lynkr.providers.base import HttpAdapter, append_path, path_of

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
    return passthrough_adapter(provider, messages_url(provider.endpoint))
