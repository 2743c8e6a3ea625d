"""The environment lynkr's git and test subprocesses get: the daemon's, minus every secret.

A stand-in for the tool worker's own scrubbed environment; the two agree on what a secret is: any
``*_API_KEY``, ``*_TOKEN``, ``*_SECRET`` or ``*_PASSWORD`` variable, and everything of Anthropic's or lynkr's.
"""

from __future__ import annotations

from collections.abc import Mapping

_SECRET_SUFFIXES = ("_API_KEY", "_TOKEN", "_SECRET", "_PASSWORD")
_OWNED_PREFIXES = ("ANTHROPIC_", "LYNKR_")


def scrubbed_environ(environ: Mapping[str, str]) -> dict[str, str]:
    return {name: value for name, value in environ.items() if not _is_secret(name)}


def _is_secret(name: str) -> bool:
    upper = name.upper()
    return upper.endswith(_SECRET_SUFFIXES) or upper.startswith(_OWNED_PREFIXES)
