"""Tool-call ids between upstreams and Anthropic clients: deterministic, stateless and reversible.

Anthropic requires tool_use ids to match ``^[a-zA-Z0-9_-]+$``; upstreams send ids such as ``functions.Bash:0``
or ``call abc``.  An upstream id that already matches passes through unchanged, so ids stay readable in logs.
Any other id becomes ``RESERVED_PREFIX`` + URL-safe base64 of its UTF-8 bytes (no padding).  An id that
happens to start with the prefix is encoded too, so decoding is never ambiguous.  No table is kept: the
id the client echoes back in its ``tool_result`` carries everything needed to restore the upstream's id,
even after a restart.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re

RESERVED_PREFIX = "lkx_"
_VALID_ID = re.compile(r"[a-zA-Z0-9_-]+")


def to_anthropic_id(upstream_id: str) -> str:
    """The Anthropic-valid id for an upstream tool-call id."""
    if _VALID_ID.fullmatch(upstream_id) and not upstream_id.startswith(RESERVED_PREFIX):
        return upstream_id
    # surrogatepass: a str that is not valid Unicode (lone surrogates) must still round-trip.
    raw = upstream_id.encode("utf-8", "surrogatepass")
    return RESERVED_PREFIX + base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def to_upstream_id(anthropic_id: str) -> str:
    """The exact inverse of ``to_anthropic_id``.

    An id with the prefix that is not the canonical encoding of anything was not made by us; it goes
    upstream unchanged.
    """
    if not anthropic_id.startswith(RESERVED_PREFIX):
        return anthropic_id
    encoded = anthropic_id[len(RESERVED_PREFIX):]
    try:
        raw = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
        decoded = raw.decode("utf-8", "surrogatepass")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return anthropic_id
    return decoded if to_anthropic_id(decoded) == anthropic_id else anthropic_id


def generated_id(message_id: str, index: int) -> str:
    """A tool_use id for an upstream that sends none (Ollama, some llama.cpp builds).

    Derived from the message id and the block index, so replaying the same upstream stream gives the same ids.
    The ``toolu_`` form never carries the reserved prefix, so it goes upstream unchanged when echoed back.
    """
    digest = hashlib.blake2b(message_id.encode("utf-8", "surrogatepass"), digest_size=9).hexdigest()
    return f"toolu_{digest}_{index}"
