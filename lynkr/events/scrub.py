"""Remove secrets from payloads before they reach the event log.

Two rules, applied to a copy:

* a string held under a key that names a credential (``authorization``, ``x-api-key``, ``cookie``, anything
  with ``token`` or ``secret`` in it, anything ending in ``_key``, ...) becomes ``"***"``; so do the strings
  of a list held under such a key.  Numbers, booleans and null stay: under ``max_tokens`` or
  ``input_tokens`` they are counts, not credentials.  A dict under such a key is walked like any other,
  so that its own keys decide (a tool schema's ``"api_key": {"type": "string"}`` keeps its shape);
* every occurrence of a known secret value (the configured API keys, at least six characters long)
  inside any string becomes ``"***"``, wherever it appears.

Only containers are walked and strings are only searched when there are known secrets, so a 60 kB request
body costs under a millisecond.  Plain functions, no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

MASK = "***"
_MASK_BYTES = MASK.encode()
MIN_SECRET_LENGTH = 6

_SECRET_KEYS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "x-api-key",
        "api-key",
        "api_key",
        "apikey",
        "cookie",
        "set-cookie",
        "password",
    }
)
_SECRET_KEY_PARTS = ("token", "secret")
_KEY_CACHE_LIMIT = 4096


def is_secret_key(key: str) -> bool:
    """Whether a value stored under ``key`` should be treated as a credential."""
    folded = key.lower()
    return (
        folded in _SECRET_KEYS
        or folded.endswith("_key")
        or any(part in folded for part in _SECRET_KEY_PARTS)
    )


class Scrubber:
    """Masks credentials in JSON-shaped values; see the module docstring for the rules."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        # Longest first, so that a secret containing another is masked whole.
        self._secrets = tuple(
            sorted({s for s in secrets if len(s) >= MIN_SECRET_LENGTH}, key=len, reverse=True)
        )
        self._secret_bytes = tuple(secret.encode() for secret in self._secrets)
        # Keys repeat endlessly across bodies ("type", "text", "role"); remember the verdicts.
        self._key_verdicts: dict[str, bool] = {}

    def scrub(self, value: Any) -> Any:
        """A copy of ``value`` with secrets masked.  Dicts, lists and tuples are copied (tuples as lists)."""
        kind = type(value)
        if kind is dict:
            return self._dict(value)
        if kind is list or kind is tuple:
            return self._list(value, False)
        return self._other(value, False)

    def scrub_bytes(self, data: bytes) -> bytes:
        """``data`` (UTF-8 text, such as a raw request body) with every known secret value masked."""
        for secret in self._secret_bytes:
            if secret in data:
                data = data.replace(secret, _MASK_BYTES)
        return data

    def scrub_text(self, text: str) -> str:
        """``text`` with every known secret value masked."""
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        return text

    # The walk is the recorder's main cost per event, so the common cases (str, dict, list, scalars) are
    # tested inline by exact type; anything else (subclasses, other scalars) goes through _other.

    def _dict(self, value: dict[Any, Any]) -> dict[Any, Any]:
        copy: dict[Any, Any] = {}
        search = bool(self._secrets)
        for key, item in value.items():
            kind = type(item)
            if kind is str:
                if self._secret_key(key):
                    item = MASK
                elif search:
                    item = self.scrub_text(item)
            elif kind is dict:
                item = self._dict(item)
            elif kind is bytes:
                if search:
                    item = self.scrub_bytes(item)
            elif kind is list or kind is tuple:
                item = self._list(item, self._secret_key(key))
            elif not (kind is int or kind is float or kind is bool or item is None):
                item = self._other(item, self._secret_key(key))
            copy[key] = item
        return copy

    def _list(self, value: list[Any] | tuple[Any, ...], under_secret_key: bool) -> list[Any]:
        copy: list[Any] = []
        search = bool(self._secrets)
        for item in value:
            kind = type(item)
            if kind is str:
                if under_secret_key:
                    item = MASK
                elif search:
                    item = self.scrub_text(item)
            elif kind is dict:
                item = self._dict(item)
            elif kind is list or kind is tuple:
                item = self._list(item, under_secret_key)
            elif not (kind is int or kind is float or kind is bool or item is None):
                item = self._other(item, under_secret_key)
            copy.append(item)
        return copy

    def _other(self, value: Any, under_secret_key: bool) -> Any:
        if isinstance(value, str):
            return MASK if under_secret_key else self.scrub_text(str(value))
        if isinstance(value, dict):
            return self._dict(dict(value))
        if isinstance(value, (list, tuple)):
            return self._list(list(value), under_secret_key)
        return value

    def _secret_key(self, key: object) -> bool:
        if type(key) is not str:
            return False
        verdict = self._key_verdicts.get(key)
        if verdict is None:
            if len(self._key_verdicts) >= _KEY_CACHE_LIMIT:
                self._key_verdicts.clear()
            verdict = self._key_verdicts[key] = is_secret_key(key)
        return verdict
