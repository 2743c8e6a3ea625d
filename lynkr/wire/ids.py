"""Tool-call ids between upstreams and Anthropic clients: deterministic, stateless and reversible.

Anthropic requires tool_use ids to match ``^[a-zA-Z0-9_-]+$``; upstreams send ids such as ``functions.Bash:0``
or ``call abc``.  An upstream id that already matches passes through unchanged, so ids stay readable in logs.
Any other id becomes ``RESERVED_PREFIX`` + URL-safe base64 of its UTF-8 bytes (no padding).  An id that
happens to start with the prefix is encoded too, so decoding is never ambiguous.  No table is kept: the
id the client echoes back in its ``tool_result`` carries everything needed to restore the upstream's id,
even after a restart.

Some upstreams take only their own id form: Mistral-family models (through vLLM, Ollama's OpenAI API or
OpenRouter) refuse any tool-call id that is not exactly 9 letters and digits.  The ``short9`` scheme
(``tool_id_scheme = "short9"`` in a provider's options) sends such an id unchanged, so ids the upstream issued
come back to it exactly as issued, and maps any other id (a ``toolu_`` id from an Anthropic turn earlier in the
conversation, one lynkr generated) to 9 base-62 characters of a hash of it: the same id always gives the same
short id, so a tool_use and its tool_result still pair up, with no table to keep.  Two ids of one conversation
would meet on one short id with odds of about n^2 / 2.7e16.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import string
from collections.abc import Callable
from typing import Literal, get_args

RESERVED_PREFIX = "lkx_"
_VALID_ID = re.compile(r"[a-zA-Z0-9_-]+")

ToolIdScheme = Literal["standard", "short9"]
TOOL_ID_SCHEMES: tuple[ToolIdScheme, ...] = get_args(ToolIdScheme)

_SHORT_ID = re.compile(r"[a-zA-Z0-9]{9}")
_BASE62 = string.digits + string.ascii_letters


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


def to_short_upstream_id(anthropic_id: str) -> str:
    """The ``short9`` scheme: an id of exactly 9 letters and digits for an Anthropic id (see the module doc)."""
    upstream_id = to_upstream_id(anthropic_id)
    if _SHORT_ID.fullmatch(upstream_id):
        return upstream_id
    # 62**9 < 2**64: eight bytes of hash give every one of the 9 digits its full range.
    number = int.from_bytes(hashlib.blake2b(anthropic_id.encode("utf-8", "surrogatepass"), digest_size=8).digest())
    digits = []
    for _ in range(9):
        number, digit = divmod(number, 62)
        digits.append(_BASE62[digit])
    return "".join(digits)


def upstream_id_mapper(scheme: ToolIdScheme) -> Callable[[str], str]:
    """The function that turns a client's tool_use id into the id the upstream takes, for ``scheme``."""
    return to_short_upstream_id if scheme == "short9" else to_upstream_id
