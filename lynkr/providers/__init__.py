"""Provider adapters: for each configured upstream, its URL, auth headers, wire format and limits.

``adapter_for(provider_config)`` picks the adapter for a provider's kind; see ``registry`` for plugins.
"""

from __future__ import annotations

from lynkr.providers.base import Adapter, HttpAdapter, Wire
from lynkr.providers.registry import ENTRY_POINT_GROUP, UnknownProviderKind, adapter_for, installed_kinds

__all__ = [
    "ENTRY_POINT_GROUP",
    "Adapter",
    "HttpAdapter",
    "UnknownProviderKind",
    "Wire",
    "adapter_for",
    "installed_kinds",
]
