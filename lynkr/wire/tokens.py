"""An offline estimate of a request's input tokens (``count_tokens`` without an upstream, message_start usage).

The heuristic, and why:
- Characters divided by a per-kind ratio: about 4 characters a token for prose (system prompts, chat text,
  tool descriptions) and 3.5 for structured text (JSON schemas, tool inputs, tool output, which is mostly code
  and file listings).  These are the usual ratios for BPE tokenizers on English and code.  A regex
  word/punctuation split would be a little closer on code but costs ~10x more, and the CPU budget for a whole
  request is under a millisecond.
- Non-ASCII text counts its UTF-8 length instead of its characters: such scripts take more tokens per
  character, and ``str.isascii`` keeps ASCII text (nearly all of it) free of an encode.
- Images cost a fixed 1600 tokens (the API's cost for a ~1.15 megapixel image, the size it downscales to);
  a base64 PDF about one token per 33 base64 characters (~2000 tokens for a 50 kB page).
- Every turn adds a few tokens of role markup, and offering tools adds the API's tool-use system prompt.
System, role:"system" messages and tools are all counted: a count that leaves them out is badly low.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import orjson

PROSE_CHARS_PER_TOKEN = 4.0
STRUCTURED_CHARS_PER_TOKEN = 3.5
IMAGE_TOKENS = 1600
PDF_BASE64_CHARS_PER_TOKEN = 33
TURN_TOKENS = 4
TOOL_TOKENS = 6
TOOL_USE_SYSTEM_PROMPT_TOKENS = 346

def _size(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


class _Tally:
    __slots__ = ("prose", "structured", "fixed", "json_values")

    def __init__(self) -> None:
        self.prose = 0
        self.structured = 0
        self.fixed = 0
        # Schemas and tool inputs are measured by one JSON encoding at the end: one C call instead of dozens.
        self.json_values: list[object] = []

    def content(self, content: object, *, structured: bool = False) -> None:
        if isinstance(content, str):
            if structured:
                self.structured += _size(content)
            else:
                self.prose += _size(content)
        elif isinstance(content, list):
            for block in content:
                if isinstance(block, dict):
                    self.block(block, structured=structured)

    def block(self, block: Mapping[str, Any], *, structured: bool) -> None:
        kind = block.get("type")
        if kind == "text":
            self.content(block.get("text"), structured=structured)
        elif kind in ("tool_use", "server_tool_use"):
            self.prose += len(str(block.get("name", "")))
            self.json_values.append(block.get("input"))
        elif kind == "tool_result":
            self.content(block.get("content"), structured=True)
        elif kind == "thinking":
            self.content(block.get("thinking"))
        elif kind == "image":
            self.fixed += IMAGE_TOKENS
        elif kind == "document":
            self._document(block)
        elif kind == "tool_reference":
            self.prose += len(str(block.get("tool_name", "")))
        elif kind == "search_result":
            self.content(block.get("title"))
            self.content(block.get("content"))
        # redacted_thinking is opaque to us and small next to the rest; it is not counted.

    def _document(self, block: Mapping[str, Any]) -> None:
        source = block.get("source") or {}
        kind = source.get("type")
        if kind == "text":
            self.content(source.get("data"))
        elif kind == "content":
            self.content(source.get("content"))
        elif kind == "base64":
            self.fixed += len(str(source.get("data", ""))) // PDF_BASE64_CHARS_PER_TOKEN
        else:
            self.fixed += IMAGE_TOKENS

    def tools(self, tools: Iterable[Mapping[str, Any]]) -> None:
        count = 0
        for tool in tools:
            count += 1
            self.prose += len(str(tool.get("name", ""))) + _size(str(tool.get("description", "")))
            self.json_values.append(tool.get("input_schema"))
        if count:
            self.fixed += TOOL_USE_SYSTEM_PROMPT_TOKENS + TOOL_TOKENS * count

    def tokens(self) -> int:
        if self.json_values:
            # UTF-8 length, less the list's brackets and commas.
            self.structured += len(orjson.dumps(self.json_values)) - len(self.json_values) - 1
        return (
            int(self.prose / PROSE_CHARS_PER_TOKEN + self.structured / STRUCTURED_CHARS_PER_TOKEN + 0.5)
            + self.fixed
        )


def estimate_tokens(request: Mapping[str, Any]) -> int:
    """Estimated input tokens for a Messages or count_tokens request (validated or not)."""
    tally = _Tally()
    tally.content(request.get("system"))
    tools = request.get("tools")
    if isinstance(tools, list):
        tally.tools(tool for tool in tools if isinstance(tool, dict))
    messages = request.get("messages")
    if isinstance(messages, list):
        for message in messages:
            if isinstance(message, dict):
                tally.fixed += TURN_TOKENS
                tally.content(message.get("content"))
    return max(tally.tokens(), 1)
