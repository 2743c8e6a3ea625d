"""Databricks model serving: ``DATABRICKS_API_BASE`` + ``DATABRICKS_ENDPOINT_PATH``, Bearer personal access token.

Serving endpoints speak OpenAI chat (``/serving-endpoints/<name>/invocations``, or the OpenAI-client style base
``/serving-endpoints`` + ``/chat/completions`` with ``model=<name>``).  Claude on Databricks also has a native
Anthropic path under ``/serving-endpoints/anthropic/``; there the request passes through almost untouched, but
``count_tokens`` answers 404, so this adapter offers none.
"""

from __future__ import annotations

from lynkr.providers.base import (
    Auth,
    HttpAdapter,
    Wire,
    append_path,
    choose_http2,
    parse_tool_id_scheme,
    path_of,
    static_headers,
)
from lynkr.settings import ProviderConfig, ProviderSettings, ProviderVar

KIND = "databricks"
DEFAULT_ENDPOINT_PATH = "/serving-endpoints/databricks-claude-sonnet-4-5/invocations"

SETTINGS = ProviderSettings(
    kind=KIND,
    env_prefix="DATABRICKS",
    variables=(
        ProviderVar(var="DATABRICKS_API_BASE", target="endpoint", doc="Databricks workspace URL."),
        ProviderVar(var="DATABRICKS_API_KEY", target="api_key", doc="Databricks personal access token."),
        ProviderVar(
            var="DATABRICKS_ENDPOINT_PATH",
            target="option:endpoint_path",
            doc="Serving endpoint path; under /serving-endpoints/anthropic/ it speaks Anthropic.",
            default=DEFAULT_ENDPOINT_PATH,
        ),
    ),
    endpoint_example="your workspace URL like https://adb-123.azuredatabricks.net",
    key_example="a Databricks personal access token (dapi...)",
)
_SERVING = "/serving-endpoints"
_ANTHROPIC = "/serving-endpoints/anthropic"


def invocation_url(endpoint: str, endpoint_path: str | None) -> str:
    """The URL to POST to, from a workspace base plus endpoint path, or from a URL that already names one."""
    url = endpoint if _SERVING in path_of(endpoint) else append_path(endpoint, endpoint_path or DEFAULT_ENDPOINT_PATH)
    path = path_of(url)
    if path.endswith(_SERVING):
        return append_path(url, "chat/completions")
    if path.endswith(_ANTHROPIC):
        return append_path(url, "v1/messages")
    if path.endswith(_ANTHROPIC + "/v1"):
        return append_path(url, "messages")
    return url


def speaks_anthropic(url: str) -> bool:
    return (path_of(url) + "/").find(_ANTHROPIC + "/") >= 0


def build(provider: ProviderConfig) -> HttpAdapter:
    url = invocation_url(provider.endpoint, provider.options.get("endpoint_path"))
    wire: Wire = "anthropic" if speaks_anthropic(url) else "openai"
    return HttpAdapter(
        name=provider.name,
        kind=provider.kind,
        wire=wire,
        http2=choose_http2(provider.http2, url),
        max_tokens=provider.max_tokens,
        url=url,
        token_count_url=None,
        auth=Auth.BEARER,
        api_key=provider.api_key.reveal() if provider.api_key else None,
        extra_headers=static_headers(provider.options),
        anthropic_version=provider.options.get("api_version"),
        models=provider.models,
        default_model=provider.default_model,
        tool_id_scheme=parse_tool_id_scheme(provider.options),
    )
