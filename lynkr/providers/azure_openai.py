"""Azure OpenAI: ``api-key`` header, OpenAI chat format, in one of two URL forms.

- deployments: ``{endpoint}/openai/deployments/{deployment}/chat/completions?api-version=...``
- v1: an endpoint ending in ``/openai/v1`` gives ``{endpoint}/chat/completions``, no api-version, and the
  deployment name goes in the body as the model.
A full ``.../chat/completions`` URL is used as given (an api-version is added if it lacks one).
"""

from __future__ import annotations

from urllib.parse import parse_qsl, quote, urlencode, urlsplit

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
from lynkr.settings import ProviderConfig, ProviderSettings, ProviderVar, Requirement

KIND = "azure-openai"
DEFAULT_API_VERSION = "2024-10-21"


def is_v1_endpoint(endpoint: str) -> bool:
    return path_of(endpoint).endswith("/openai/v1")


def needs_deployment(endpoint: str) -> bool:
    """Only the deployments form puts the deployment in the URL; the others carry it as the model."""
    path = path_of(endpoint)
    return not (is_v1_endpoint(endpoint) or path.endswith("/chat/completions"))


SETTINGS = ProviderSettings(
    kind=KIND,
    env_prefix="AZURE_OPENAI",
    variables=(
        ProviderVar(
            var="AZURE_OPENAI_ENDPOINT", target="endpoint", doc="https://<resource>.openai.azure.com (or .../openai/v1)."
        ),
        ProviderVar(var="AZURE_OPENAI_API_KEY", target="api_key", doc="Azure OpenAI key."),
        ProviderVar(var="AZURE_OPENAI_DEPLOYMENT", target="option:deployment", doc="Deployment name (the model)."),
        ProviderVar(
            var="AZURE_OPENAI_API_VERSION",
            target="option:api_version",
            doc="api-version for the deployments URL form.",
            default=DEFAULT_API_VERSION,
        ),
    ),
    endpoint_example="https://<resource>.openai.azure.com",
    key_example="your Azure OpenAI key",
    requires=(
        Requirement(
            target="option:deployment",
            noun="deployment",
            example="your deployment name",
            toml_example='"my-gpt-4o"',
            applies=needs_deployment,
        ),
    ),
)


def chat_url(endpoint: str, *, deployment: str | None, api_version: str | None) -> str:
    path = path_of(endpoint)
    if is_v1_endpoint(endpoint):
        return append_path(endpoint, "chat/completions")
    if path.endswith("/chat/completions"):
        url = endpoint
    else:
        if not deployment:
            raise ValueError(f"Azure OpenAI endpoint {endpoint!r} needs a deployment name")
        url = append_path(endpoint, f"openai/deployments/{quote(deployment, safe='')}/chat/completions")
    if "/openai/deployments/" not in path_of(url):
        return url
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    query.setdefault("api-version", api_version or DEFAULT_API_VERSION)
    return parts._replace(query=urlencode(query)).geturl()


def build(provider: ProviderConfig) -> HttpAdapter:
    deployment = provider.options.get("deployment")
    url = chat_url(provider.endpoint, deployment=deployment, api_version=provider.options.get("api_version"))
    return HttpAdapter(
        name=provider.name,
        kind=provider.kind,
        wire="openai",
        http2=choose_http2(provider.http2, url),
        max_tokens=provider.max_tokens,
        url=url,
        auth=Auth.API_KEY,
        api_key=provider.api_key.reveal() if provider.api_key else None,
        extra_headers=static_headers(provider.options),
        models=provider.models,
        # The deployment is the model unless the model map says otherwise.
        default_model=provider.default_model or deployment,
        tool_id_scheme=parse_tool_id_scheme(provider.options),
        reasoning=parse_bool_option(provider.options, "reasoning"),
    )
