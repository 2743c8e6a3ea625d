"""Client-facing errors.

Every error a client can see knows its Anthropic ``error.type`` and HTTP status, the way h11's
``ProtocolError`` knows the status a server should answer with.  Plain data: no I/O, no trio.
"""

from __future__ import annotations

from typing import Any, ClassVar


class LynkrError(Exception):
    """An error that maps to an Anthropic-shaped error response."""

    status: ClassVar[int] = 500
    error_type: ClassVar[str] = "api_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def body(self, request_id: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": "error",
            "error": {"type": self.error_type, "message": self.message},
        }
        if request_id is not None:
            body["request_id"] = request_id
        return body


class InvalidRequest(LynkrError):
    status = 400
    error_type = "invalid_request_error"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field


class AuthenticationFailed(LynkrError):
    status = 401
    error_type = "authentication_error"


class PermissionDenied(LynkrError):
    status = 403
    error_type = "permission_error"


class NotFound(LynkrError):
    status = 404
    error_type = "not_found_error"


class UnsupportedMediaType(LynkrError):
    """A body in a format lynkr does not read.  The API has no own type for 415; its 4xx default applies."""

    status = 415
    error_type = "invalid_request_error"


class RequestTooLarge(LynkrError):
    status = 413
    error_type = "request_too_large"


class RateLimited(LynkrError):
    status = 429
    error_type = "rate_limit_error"


class UpstreamError(LynkrError):
    status = 502
    error_type = "api_error"


class UpstreamTimeout(LynkrError):
    status = 504
    error_type = "timeout_error"


class Overloaded(LynkrError):
    status = 529
    error_type = "overloaded_error"


class NotConfigured(LynkrError):
    """No provider is configured; the message names the variables to set."""

    status = 503
    error_type = "api_error"


_BY_STATUS: dict[int, type[LynkrError]] = {
    400: InvalidRequest,
    401: AuthenticationFailed,
    403: PermissionDenied,
    404: NotFound,
    413: RequestTooLarge,
    429: RateLimited,
    504: UpstreamTimeout,
    529: Overloaded,
}


def error_type_for_status(status: int) -> str:
    """The Anthropic error type that goes with an HTTP status."""
    cls = _BY_STATUS.get(status)
    if cls is not None:
        return cls.error_type
    return "invalid_request_error" if 400 <= status < 500 else "api_error"
