"""Keep web pages from driving the daemon, the way MCP's transport guidance asks of local HTTP servers.

Any page the user visits can send requests to ``http://127.0.0.1:8080``: the browser's CORS rules keep most
answers from the page, not the requests from the daemon, and one request can spend the user's upstream credit.
Three checks close that, and none of them touches a request from Claude Code or an SDK:

- **Origin.**  Browsers send ``Origin`` on every cross-origin request that is not a plain GET; the CLI and the
  SDKs send none.  A request that carries one is refused unless the origin is allowed (none are by default).
- **Host.**  DNS rebinding points ``evil.example`` at 127.0.0.1, which makes the page same-origin with the
  daemon, so it may read answers as well.  The browser still sends ``Host: evil.example:8080``: only the bound
  address, the loopback names and configured names are answered, and the port must be the bound one.
  An IP address cannot be rebound, so a daemon bound to every address (0.0.0.0 or ::) takes any IP literal.
- **Content type.**  A page may POST ``text/plain``, ``multipart/form-data`` and
  ``application/x-www-form-urlencoded`` (or a body with no type) without a CORS preflight.  lynkr's bodies are
  JSON, so a POST to a route must say ``application/json`` or an ``application/*+json`` type, which a page
  cannot send without a preflight that lynkr never grants.

A refusal is an Anthropic-shaped 403 ``permission_error`` or 415 ``invalid_request_error``, recorded as a
``request.refused`` event.  A page can send refusals in a tight loop, so at most ``RECORDED_PER_S`` of them
(in bursts of ``RECORDED_BURST``) reach the log; the next one recorded counts those that did not.  Every
refusal is still answered, and counted in ``/metrics`` by status.  The check runs on every request, so the
common case is set lookups on values worked out once at start-up.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Awaitable, Callable

import attrs

from lynkr.errors import LynkrError, PermissionDenied, UnsupportedMediaType
from lynkr.events.catalog import RequestRefused
from lynkr.http.asgi import Scope
from lynkr.settings import STR_LIST, setting

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")
WILDCARD_ADDRESSES = ("0.0.0.0", "::", "")
_FIELD_LIMIT = 200  # characters of an attacker-chosen header kept in the event
_CHECKED = frozenset({b"origin", b"host", b"content-type"})
RECORDED_PER_S = 10.0
RECORDED_BURST = 20.0


@attrs.frozen(kw_only=True)
class GuardConfig:
    allowed_origins: tuple[str, ...] = setting(
        (),
        env="LYNKR_ALLOWED_ORIGINS",
        doc="Web origins whose pages may call lynkr, e.g. https://app.example (comma-separated); none by default.",
        converter=STR_LIST,
    )
    allowed_hosts: tuple[str, ...] = setting(
        (),
        env="LYNKR_ALLOWED_HOSTS",
        doc="Host names lynkr answers to besides its bind address and localhost (comma-separated).",
        converter=STR_LIST,
    )


Record = Callable[[RequestRefused], Awaitable[None]]


@attrs.frozen(kw_only=True)
class Refusal:
    reason: str  # "origin", "host" or "content-type"
    error: LynkrError


def _origin_key(origin: str) -> str:
    return origin.strip().rstrip("/").lower()


def _split_host(value: str) -> tuple[str, str | None]:
    """``(name, port)`` of a Host header; IPv6 names keep their brackets."""
    value = value.strip().lower()
    if value.startswith("["):
        name, _, rest = value.partition("]")
        return name + "]", rest[1:] if rest.startswith(":") else None
    if value.count(":") == 1:
        name, _, port = value.partition(":")
        return name, port
    return value, None


def _host_name(address: str) -> str:
    return f"[{address}]" if ":" in address else address.lower()


def _is_ip_literal(name: str) -> bool:
    try:
        ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        return False
    return True


class RequestGuard:
    """Refuses requests from web pages; built once the daemon knows the address it is bound to."""

    def __init__(
        self,
        config: GuardConfig,
        *,
        bound: tuple[str, int],
        record: Record,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        address, port = bound
        self._port = str(port)
        self._any_ip = address in WILDCARD_ADDRESSES
        names = {*LOOPBACK_NAMES, *(_split_host(name)[0] for name in config.allowed_hosts)}
        if not self._any_ip:
            names.add(_host_name(address))
        self._names = frozenset(names)
        # Exact header values answered without parsing: the common case costs one set lookup.
        self._hosts = frozenset({*names, *(f"{name}:{port}" for name in names)})
        self._origins = frozenset(_origin_key(origin) for origin in config.allowed_origins)
        self._bound = f"{_host_name(address)}:{port}"
        self._record = record
        self._clock = clock
        self._allowance = RECORDED_BURST  # a token bucket for what reaches the log
        self._refilled = clock()
        self._unrecorded = 0

    async def admit(self, scope: Scope, route: str, request_id: str) -> None:
        """Return if the request may be served; otherwise record why, and raise the client-facing error."""
        refusal = self.check(scope, route)
        if refusal is None:
            return
        if self._may_record():
            headers = _headers_of_interest(scope)
            event = RequestRefused(
                request_id=request_id,
                reason=refusal.reason,
                method=str(scope["method"])[:_FIELD_LIMIT],
                path=str(scope["path"])[:_FIELD_LIMIT],
                origin=_cut(headers.get(b"origin")),
                host=_cut(headers.get(b"host")),
                content_type=_cut(headers.get(b"content-type")),
                unrecorded_before=self._unrecorded,
            )
            self._unrecorded = 0
            await self._record(event)
        else:
            self._unrecorded += 1
        raise refusal.error

    def _may_record(self) -> bool:
        now = self._clock()
        self._allowance = min(RECORDED_BURST, self._allowance + (now - self._refilled) * RECORDED_PER_S)
        self._refilled = now
        if self._allowance < 1.0:
            return False
        self._allowance -= 1.0
        return True

    def check(self, scope: Scope, route: str) -> Refusal | None:
        found = {key: value for key, value in scope["headers"] if key in _CHECKED}
        origin, host, content_type = found.get(b"origin"), found.get(b"host"), found.get(b"content-type")
        if origin is not None and _origin_key(origin.decode("latin-1")) not in self._origins:
            shown = origin.decode("latin-1")[:_FIELD_LIMIT]
            return Refusal(
                reason="origin",
                error=PermissionDenied(
                    f"requests from the web origin {shown!r} are refused: lynkr serves local clients such as "
                    "Claude Code; to let that site's pages call lynkr, add the origin to LYNKR_ALLOWED_ORIGINS"
                ),
            )
        if host is not None and not self._host_allowed(host.decode("latin-1")):
            shown = host.decode("latin-1")[:_FIELD_LIMIT]
            return Refusal(
                reason="host",
                error=PermissionDenied(
                    f"Host {shown!r} is not an address lynkr serves (it listens on {self._bound}); connect "
                    "through that address or localhost, or add the name to LYNKR_ALLOWED_HOSTS"
                ),
            )
        if scope["method"] == "POST" and route != "unknown" and not _is_json(content_type):
            shown = "no content-type" if content_type is None else repr(content_type.decode("latin-1")[:80])
            return Refusal(
                reason="content-type",
                error=UnsupportedMediaType(
                    f"request bodies must be JSON, sent with content-type: application/json (got {shown})"
                ),
            )
        return None

    def _host_allowed(self, value: str) -> bool:
        if value in self._hosts:
            return True
        name, port = _split_host(value)
        if port is not None and port != self._port:
            return False
        return name in self._names or (self._any_ip and _is_ip_literal(name))


def _is_json(content_type: bytes | None) -> bool:
    if content_type is None:
        return False
    media_type = content_type.split(b";", 1)[0].strip().lower()
    return media_type == b"application/json" or (
        media_type.startswith(b"application/") and media_type.endswith(b"+json")
    )


def _headers_of_interest(scope: Scope) -> dict[bytes, str]:
    return {key: value.decode("latin-1") for key, value in scope["headers"] if key in _CHECKED}


def _cut(value: str | None) -> str | None:
    return None if value is None else value[:_FIELD_LIMIT]
