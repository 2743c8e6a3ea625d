"""Tool names for bridged MCP tools: ``mcp__<server>__<tool>``, Claude Code's own convention.

Upstreams limit names: Anthropic takes ``^[a-zA-Z0-9_-]{1,128}$``, OpenAI function names at most 64 characters.
So a name is kept to :data:`NAME_LIMIT` characters of that alphabet.  Characters outside it become ``_``, and a
name that had to change (or be shortened) ends with 8 hex characters of the original's hash, so two tools never
collapse into one name and the same tool always gets the same name.  The tool object keeps the original server
and tool names: mapping back is a registry look-up.
"""

from __future__ import annotations

import hashlib
import re

NAME_LIMIT = 64
PREFIX = "mcp__"
_OUTSIDE = re.compile(r"[^a-zA-Z0-9_-]")


def tool_name(server: str, tool: str) -> str:
    full = f"{PREFIX}{server}__{tool}"
    safe = _OUTSIDE.sub("_", full)
    if safe == full and len(full) <= NAME_LIMIT:
        return full
    digest = hashlib.sha256(full.encode()).hexdigest()[:8]
    return f"{safe[: NAME_LIMIT - len(digest) - 1]}_{digest}"
