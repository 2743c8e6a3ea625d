"""What every provider adapter offers, and the one shared implementation the built-in kinds use.

An adapter answers the questions the provider pool asks about one configured upstream: which URL, which
headers, which wire format, which model name, and how many output tokens at most.  It is plain data with
pure methods: no I/O, no trio.  Third-party kinds may reuse :class:`HttpAdapter` or write their own class
that satisfies :class:`Adapter`.
"""

from __future__ import annotations

import enum
import fnmatch
import re
from collections.abc import Mapping
from typing import Literal, Protocol, runtime_checkable
from urllib.parse import urlsplit

import attrs

from lynkr.wire.ids import TOOL_ID_SCHEMES, ToolIdScheme
from lynkr.settings import HEADER_OPTION_PREFIX

Wire = Literal["anthropic", "openai", "ollama"]

ANTHROPIC_VERSION_DEFAULT = "2023-06-01"


@runtime_checkable
class Adapter(Protocol):
    """One configured upstream, seen by the provider pool."""

    @property
    def name(self) -> str: ...

    @property
    def kind(self) -> str: ...

    @property
    def wire(self) -> Wire: ...

    @property
    def http2(self) -> bool: ...

    @property
    def max_tokens(self) -> int | None: ...

    def messages_url(self, *, stream: bool) -> str: ...

    def count_tokens_url(self) -> str | None: ...

    def headers(self, incoming: Mapping[str, str]) -> dict[str, str]: ...

    def upstream_model(self, requested: str, *, small: bool) -> str: ...

    def reasoning_model(self, model: str) -> bool: ...


class Auth(enum.Enum):
    """How the API key travels."""

    BEARER = "bearer"  # Authorization: Bearer <key>
    API_KEY = "api-key"  # api-key: <key> (Azure OpenAI)
    X_API_KEY = "x-api-key"  # x-api-key: <key> (Anthropic, Azure Anthropic)


@attrs.frozen(kw_only=True)
class HttpAdapter:
    """An adapter whose answers were all worked out when it was built from its configuration."""

    name: str
    kind: str
    wire: Wire
    http2: bool
    max_tokens: int | None
    url: str
    token_count_url: str | None = None
    auth: Auth = Auth.BEARER
    api_key: str | None = attrs.field(default=None, repr=False)
    extra_headers: Mapping[str, str] = attrs.field(factory=dict)
    # Set when the configuration pins anthropic-version; otherwise the client's value (or the default) is sent.
    anthropic_version: str | None = None
    models: Mapping[str, str] = attrs.field(factory=dict)
    default_model: str | None = None
    # None: decide from the model name.  True/False: the configuration says so (deployment names hide the model).
    reasoning: bool | None = None
    # The form of the tool-call ids sent upstream (lynkr/wire/ids.py); "short9" for Mistral-family models.
    tool_id_scheme: ToolIdScheme = "standard"

    def messages_url(self, *, stream: bool) -> str:
        return self.url

    def count_tokens_url(self) -> str | None:
        return self.token_count_url

    def headers(self, incoming: Mapping[str, str]) -> dict[str, str]:
        out = {"content-type": "application/json"}
        if self.wire == "anthropic":
            out.update(anthropic_passthrough_headers(incoming, pinned_version=self.anthropic_version))
        if self.api_key:
            out.update(auth_headers(self.auth, self.api_key))
        out.update(self.extra_headers)
        return out

    def upstream_model(self, requested: str, *, small: bool) -> str:
        return map_model(self.models, self.default_model, requested, small=small)

    def reasoning_model(self, model: str) -> bool:
        if self.reasoning is not None:
            return self.reasoning
        return looks_like_reasoning_model(model)


def auth_headers(auth: Auth, api_key: str) -> dict[str, str]:
    if auth is Auth.BEARER:
        return {"authorization": f"Bearer {api_key}"}
    if auth is Auth.API_KEY:
        return {"api-key": api_key}
    return {"x-api-key": api_key}


def header_value(headers: Mapping[str, str], name: str) -> str | None:
    """Case-insensitive header lookup: ASGI gives lower-case names, other callers may not."""
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return None


def anthropic_passthrough_headers(incoming: Mapping[str, str], *, pinned_version: str | None) -> dict[str, str]:
    """The client's ``anthropic-version`` and ``anthropic-beta``, which an Anthropic-native upstream must see."""
    version = pinned_version or header_value(incoming, "anthropic-version") or ANTHROPIC_VERSION_DEFAULT
    out = {"anthropic-version": version}
    beta = header_value(incoming, "anthropic-beta")
    if beta:
        out["anthropic-beta"] = beta
    return out


def static_headers(options: Mapping[str, str]) -> dict[str, str]:
    return {
        key[len(HEADER_OPTION_PREFIX) :]: value
        for key, value in options.items()
        if key.startswith(HEADER_OPTION_PREFIX) and len(key) > len(HEADER_OPTION_PREFIX)
    }


def map_model(models: Mapping[str, str], default_model: str | None, requested: str, *, small: bool) -> str:
    """Exact name, then the first matching glob, then "small"/"main", then the default, else unchanged."""
    if requested in models:
        return models[requested]
    for pattern, target in models.items():
        if pattern not in ("main", "small") and fnmatch.fnmatchcase(requested, pattern):
            return target
    if small and "small" in models:
        return models["small"]
    if "main" in models:
        return models["main"]
    return default_model or requested


# o1, o3-mini, o4-mini, gpt-5, gpt-5-mini, and the same behind a router prefix such as "openai/o3".
_REASONING_MODEL = re.compile(r"^(?:[\w.-]+/)*(?:o\d+(?:$|[-_.:])|gpt-5)", re.IGNORECASE)


def looks_like_reasoning_model(model: str) -> bool:
    """Models that take ``max_completion_tokens`` instead of ``max_tokens``."""
    return _REASONING_MODEL.match(model) is not None


def parse_bool_option(options: Mapping[str, str], key: str) -> bool | None:
    raw = options.get(key)
    if raw is None:
        return None
    return raw.strip().lower() in ("1", "true", "yes", "on")


TOOL_ID_SCHEME_OPTION = "tool_id_scheme"


def parse_tool_id_scheme(options: Mapping[str, str]) -> ToolIdScheme:
    """The ``tool_id_scheme`` option; a value lynkr does not know stops the start with a message naming them."""
    raw = options.get(TOOL_ID_SCHEME_OPTION, "standard").strip().lower()
    for scheme in TOOL_ID_SCHEMES:
        if raw == scheme:
            return scheme
    known = ", ".join(TOOL_ID_SCHEMES)
    raise ValueError(f"provider option {TOOL_ID_SCHEME_OPTION} = {raw!r} is not one of: {known}")


def tool_id_scheme_of(adapter: Adapter) -> ToolIdScheme:
    """The adapter's tool-id scheme; a plugin adapter written before the option existed has the standard one."""
    scheme: object = getattr(adapter, "tool_id_scheme", "standard")
    for known in TOOL_ID_SCHEMES:
        if scheme == known:
            return known
    return "standard"


def https(url: str) -> bool:
    return urlsplit(url).scheme == "https"


def choose_http2(configured: bool | None, url: str) -> bool:
    """HTTP/2 by default over TLS, where ALPN negotiates it; plain-HTTP local servers speak HTTP/1.1."""
    return https(url) if configured is None else configured


def append_path(url: str, suffix: str) -> str:
    """``url`` with ``suffix`` added to its path, keeping any query string."""
    parts = urlsplit(url)
    path = parts.path.rstrip("/") + "/" + suffix.lstrip("/")
    return parts._replace(path=path).geturl()


def path_of(url: str) -> str:
    return urlsplit(url).path.rstrip("/")
