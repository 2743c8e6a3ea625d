"""The repo map as request context (``LYNKR_REPO_MAP_IN_REQUESTS``): one more system block, kept byte-stable.

The map is seeded by the conversation's first user message only.  Later messages would change the seeds, and
with them the system prompt, on every turn, which would throw away the upstream's prompt cache from the system
prompt on; seeded once, the block's text changes only when the index does.
"""

from __future__ import annotations

from typing import Any

import attrs
import trio

from lynkr.actors.messages import Turn
from lynkr.index.repomap import repo_map
from lynkr.index.symbols import IndexReader

HEADER = "Repository map (definitions most relevant to this conversation, from lynkr's index):\n"


def first_user_text(request: dict[str, Any]) -> str:
    for message in request.get("messages") or ():
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                return "\n".join(b.get("text", "") for b in content if isinstance(b, dict) and b.get("type") == "text")
            return ""
    return ""


def with_repo_map(request: dict[str, Any], text: str) -> dict[str, Any]:
    """``request`` with ``text`` as a last system block (a string system prompt becomes one block first)."""
    if not text:
        return request
    system = request.get("system")
    blocks: list[Any]
    if isinstance(system, str):
        blocks = [{"type": "text", "text": system}] if system else []
    elif isinstance(system, list):
        blocks = list(system)
    else:
        blocks = []
    blocks.append({"type": "text", "text": HEADER + text})
    return {**request, "system": blocks}


@attrs.frozen
class RepoMapContext:
    """Adds the repo map to a turn's request (the session actor calls it when the setting is on)."""

    reader: IndexReader
    budget_tokens: int

    async def __call__(self, turn: Turn) -> Turn:
        seed = first_user_text(turn.request)
        text = await trio.to_thread.run_sync(
            lambda: repo_map(self.reader, text=seed, budget_tokens=self.budget_tokens)
        )
        return attrs.evolve(turn, request=with_repo_map(turn.request, text)) if text else turn
