"""An example provider kind: an OpenAI-compatible server whose chat endpoint is ``{endpoint}/generate``.

It reuses lynkr's ``HttpAdapter``; a plugin may equally write its own class with the ``Adapter`` interface.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lynkr.providers.base import Auth, HttpAdapter, append_path, choose_http2, static_headers

if TYPE_CHECKING:
    from lynkr.config import ProviderConfig


def build_adapter(provider: ProviderConfig) -> HttpAdapter:
    url = append_path(provider.endpoint, "generate")
    return HttpAdapter(
        name=provider.name,
        kind=provider.kind,
        wire="openai",
        http2=choose_http2(provider.http2, url),
        max_tokens=provider.max_tokens,
        url=url,
        auth=Auth.BEARER,
        api_key=provider.api_key.reveal() if provider.api_key else None,
        extra_headers={"x-example-plugin": "1", **static_headers(provider.options)},
        models=provider.models,
        default_model=provider.default_model,
    )
