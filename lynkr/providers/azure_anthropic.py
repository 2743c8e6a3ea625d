"""Claude in Azure AI Foundry: ``https://{resource}.services.ai.azure.com/anthropic/v1/messages``, ``x-api-key``.

Anthropic format, passed through.  ``AZURE_ANTHROPIC_VERSION`` (option ``api_version``) pins the
``anthropic-version`` header; without it the client's version is forwarded.
"""

from __future__ import annotations

from lynkr.providers.anthropic import passthrough_adapter
from lynkr.providers.base import HttpAdapter, append_path, path_of
from lynkr.settings import ProviderConfig, ProviderSettings, ProviderVar

KIND = "azure-anthropic"

SETTINGS = ProviderSettings(
    kind=KIND,
    env_prefix="AZURE_ANTHROPIC",
    variables=(
        ProviderVar(
            var="AZURE_ANTHROPIC_ENDPOINT",
            target="endpoint",
            doc="Full https://<resource>.services.ai.azure.com/anthropic/v1/messages URL.",
        ),
        ProviderVar(var="AZURE_ANTHROPIC_API_KEY", target="api_key", doc="Azure AI Foundry key."),
        ProviderVar(var="AZURE_ANTHROPIC_VERSION", target="option:api_version", doc="Pins the anthropic-version header."),
    ),
    endpoint_example="https://<resource>.services.ai.azure.com/anthropic/v1/messages",
    key_example="your Azure AI Foundry key",
)


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
