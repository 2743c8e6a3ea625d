"""The prompt cache's key: a canonical hash of everything that determines an answer.  Sans-IO.

The key covers the whole request except what cannot change the answer, rather than a list of fields that do:
a field lynkr does not know yet (``context_management``, ``output_config``, ``top_k``) then separates answers
instead of silently sharing them.  Beside the request it names the provider the request is routed to and the
upstream model that provider is asked for, so a changed model map or route never serves an answer from
another model, and the ``anthropic-beta`` flags, which switch upstream behaviour on.

Normalised away, because they change on every request without changing the answer:

- the Claude Code CLI's ``x-anthropic-billing-header: ...`` system line (a system block, or a line of a
  string system prompt);
- ``metadata`` (the CLI's device and session ids);
- every ``cache_control`` marker (the CLI moves its last marker as the conversation grows);
- ``stream``: a streaming and a non-streaming client share one entry, each served in its own shape.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import orjson

BILLING_PREFIX = "x-anthropic-billing-header:"
VOLATILE_FIELDS = frozenset({"metadata", "stream"})
KEY_VERSION = 1  # part of every key: a change to the normalisation must not share keys with older ones


def cache_key(request: Mapping[str, Any], *, provider: str, upstream_model: str, betas: str = "") -> str:
    """The hex key of ``request`` as routed to ``provider``'s ``upstream_model``."""
    canonical = {key: value for key, value in request.items() if key not in VOLATILE_FIELDS}
    if "system" in canonical:
        canonical["system"] = _system(canonical["system"])
    if isinstance(canonical.get("messages"), list):
        canonical["messages"] = [_message(message) for message in canonical["messages"]]
    if isinstance(canonical.get("tools"), list):
        canonical["tools"] = [_unmarked(tool) for tool in canonical["tools"]]
    canonical["lynkr.route"] = [KEY_VERSION, provider, upstream_model, _beta_set(betas)]
    return hashlib.sha256(orjson.dumps(canonical, option=orjson.OPT_SORT_KEYS)).hexdigest()


# Markers are removed where the Messages API accepts them (tools, system blocks, message content blocks and the
# blocks inside a tool result) rather than by walking everything: a walk over a Claude Code request's tool schemas
# cost more than the rest of a cache hit, and a property that a schema happens to name "cache_control" is content.

def _unmarked(block: Any) -> Any:
    if isinstance(block, dict) and "cache_control" in block:
        return {key: value for key, value in block.items() if key != "cache_control"}
    return block


def _content_block(block: Any) -> Any:
    block = _unmarked(block)
    if isinstance(block, dict) and block.get("type") == "tool_result" and isinstance(block.get("content"), list):
        return {**block, "content": [_unmarked(inner) for inner in block["content"]]}
    return block


def _message(message: Any) -> Any:
    if isinstance(message, dict) and isinstance(message.get("content"), list):
        return {**message, "content": [_content_block(block) for block in message["content"]]}
    return message


def _system(system: Any) -> Any:
    if isinstance(system, str):
        if BILLING_PREFIX not in system:
            return system
        return "\n".join(line for line in system.split("\n") if not line.startswith(BILLING_PREFIX))
    if isinstance(system, list):
        return [
            _unmarked(block)
            for block in system
            if not (isinstance(block, dict) and str(block.get("text", "")).startswith(BILLING_PREFIX))
        ]
    return system


def _beta_set(betas: str) -> list[str]:
    """The ``anthropic-beta`` flags as a set: their order and spacing in the header mean nothing."""
    return sorted({flag.strip() for flag in betas.split(",") if flag.strip()})
