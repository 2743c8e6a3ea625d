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
        # Keys repeat endlessly across bodies ("type", "text", "role"); remember the verdicts.
        self._key_verdicts: dict[str, bool] = {}

    def scrub(self, value: Any) -> Any:
        """A copy of ``value`` with secrets masked.  Dicts, lists and tuples are copied (tuples as lists)."""
        return self._walk(value, False)

    def scrub_text(self, text: str) -> str:
        """``text`` with every known secret value masked."""
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        return text

    def _walk(self, value: Any, under_secret_key: bool) -> Any:
        kind = type(value)
        if kind is str:
            if under_secret_key:
                return MASK
            return self.scrub_text(value) if self._secrets else value
        if kind is dict:
            return {key: self._walk(item, self._secret_key(key)) for key, item in value.items()}
        if kind is list or kind is tuple:
            return [self._walk(item, under_secret_key) for item in value]
        if isinstance(value, str):
            return self._walk(str(value), under_secret_key)
        if isinstance(value, dict):
            return self._walk(dict(value), under_secret_key)
        if isinstance(value, (list, tuple)):
            return self._walk(list(value), under_secret_key)
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
