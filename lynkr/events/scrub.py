"""Remove secrets from payloads before they reach the event log.

Two rules:

* a string held under a key that names a credential (``authorization``, ``x-api-key``, ``cookie``, anything
  with ``token`` or ``secret`` in it, anything ending in ``_key``, ...) becomes ``"***"``; so do the strings
  of a list held under such a key.  Numbers, booleans and null stay: under ``max_tokens`` or
  ``input_tokens`` they are counts, not credentials.  A dict under such a key is walked like any other,
  so that its own keys decide (a tool schema's ``"api_key": {"type": "string"}`` keeps its shape);
* every occurrence of a known secret value (the configured API keys, at least six characters long)
  inside any string or bytes becomes ``"***"``, wherever it appears.

The input is never changed.  Scrubbing copies on write: a container is copied only when something inside
it is masked, and a value with nothing to mask comes back as the very same object, so the common case
allocates nothing.  Only containers are walked and strings are only searched when there are known
secrets, so a 60 kB request body costs under a millisecond.  Plain functions, no I/O.
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
        """``value`` with secrets masked: the same object when there is nothing to mask, else a copy.

        Copied containers are dicts and lists (a tuple with something masked comes back as a list).
        """
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
    # tested inline by exact type; anything else (subclasses, other scalars) goes through _other.  Each
    # container is copied the first time one of its items changes, and not at all when none does.

    def _dict(self, value: dict[Any, Any]) -> dict[Any, Any]:
        copy: dict[Any, Any] | None = None
        secrets = self._secrets
        verdicts = self._key_verdicts
        new: Any
        for key, item in value.items():
            kind = type(item)
            if kind is str:
                secret_key = verdicts.get(key)
                if secret_key is None:
                    secret_key = self._secret_key(key)
                if secret_key:
                    new = MASK
                else:
                    # Searched inline: most strings hold no secret, and a call per string adds up.
                    for secret in secrets:
                        if secret in item:
                            break
                    else:
                        continue
                    new = self.scrub_text(item)
            elif kind is dict:
                new = self._dict(item)
            elif kind is bytes:
                if not secrets:
                    continue
                new = self.scrub_bytes(item)
            elif kind is list or kind is tuple:
                new = self._list(item, self._secret_key(key))
            elif kind is int or kind is float or kind is bool or item is None:
                continue
            else:
                new = self._other(item, self._secret_key(key))
            if new is not item:
                if copy is None:
                    copy = dict(value)
                copy[key] = new
        return value if copy is None else copy

    def _list(self, value: list[Any] | tuple[Any, ...], under_secret_key: bool) -> Any:
        copy: list[Any] | None = None
        secrets = self._secrets
        new: Any
        for index, item in enumerate(value):
            kind = type(item)
            if kind is str:
                if under_secret_key:
                    new = MASK
                else:
                    for secret in secrets:
                        if secret in item:
                            break
                    else:
                        continue
                    new = self.scrub_text(item)
            elif kind is dict:
                new = self._dict(item)
            elif kind is list or kind is tuple:
                new = self._list(item, under_secret_key)
            elif kind is int or kind is float or kind is bool or item is None:
                continue
            else:
                new = self._other(item, under_secret_key)
            if new is not item:
                if copy is None:
                    copy = list(value)
                copy[index] = new
        return value if copy is None else copy

    def _other(self, value: Any, under_secret_key: bool) -> Any:
        if isinstance(value, str):
            if under_secret_key:
                return MASK
            scrubbed = self.scrub_text(str(value))
            return value if scrubbed == value else scrubbed
        if isinstance(value, dict):
            return self._dict(value)
        if isinstance(value, (list, tuple)):
            return self._list(value, under_secret_key)
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
