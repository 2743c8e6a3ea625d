"""Every content block type of the Messages API, and what becomes of each on its way to another wire format.

The edge's validation (``wire/anthropic.py``) keeps a block of a type it does not know: an Anthropic-native
upstream may know it (a newer API, a beta), and there the upstream decides.  The OpenAI and Ollama converters
cannot: before they build anything they call :func:`check_convertible`, which refuses an unknown type with a 400
naming the block's path, so such a request never costs an upstream call.

What a converter does with each known type is data, in ``MESSAGE_BLOCK_TYPES`` and ``TOOL_RESULT_BLOCK_TYPES``:

- ``CONVERTED``: the upstream has its own form (text, image, tool call, tool result); the converter maps it.
- ``AS_TEXT``: the content still matters to the model, so it goes as text (:func:`block_text`): documents with
  text, search results, loaded tool names, and the calls and results of tools Anthropic ran on its servers (web
  search, web fetch, code execution, MCP connector), minus their encrypted parts, which only Anthropic can read.
- ``DROPPED``: nothing in it is usable by another model.  ``thinking`` is another model's reasoning, which no
  OpenAI-style upstream can verify (and an unsigned one must never reach one that does); ``redacted_thinking``
  and the encrypted-only ``compaction`` are ciphertext; ``tool_addition``, ``tool_removal``,
  ``mcp_tool_listing`` and ``fallback`` are Anthropic's own bookkeeping for tool loading and model fallback.

Sans-IO: plain functions over dicts.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Mapping
from typing import Any, NoReturn

import orjson

from lynkr.errors import InvalidRequest

__all__ = [
    "MESSAGE_BLOCK_TYPES",
    "TOOL_RESULT_BLOCK_TYPES",
    "Fate",
    "block_text",
    "check_convertible",
]


class Fate(enum.Enum):
    CONVERTED = "converted"
    AS_TEXT = "as text"
    DROPPED = "dropped"


_C, _T, _D = Fate.CONVERTED, Fate.AS_TEXT, Fate.DROPPED

# Blocks of a message's content (user and assistant turns), as the current API and its betas define them.
MESSAGE_BLOCK_TYPES: Mapping[str, Fate] = {
    "text": _C,
    "image": _C,
    "tool_use": _C,
    "tool_result": _C,
    "document": _T,
    "search_result": _T,
    "thinking": _D,
    "redacted_thinking": _D,
    "server_tool_use": _T,
    "web_search_tool_result": _T,
    "web_fetch_tool_result": _T,
    "code_execution_tool_result": _T,
    "bash_code_execution_tool_result": _T,
    "text_editor_code_execution_tool_result": _T,
    "tool_search_tool_result": _T,
    "advisor_tool_result": _T,
    "mcp_tool_use": _T,
    "mcp_tool_result": _T,
    "container_upload": _T,
    "compaction": _T,  # its summary, when it has one in clear text
    "tool_addition": _D,
    "tool_removal": _D,
    "mcp_tool_listing": _D,
    "fallback": _D,
}

# Blocks inside a tool_result's content.
TOOL_RESULT_BLOCK_TYPES: Mapping[str, Fate] = {
    "text": _C,
    "image": _C,
    "document": _T,
    "search_result": _T,
    "tool_reference": _T,
    "browser_state": _T,
}

SYSTEM_BLOCK_TYPES: Mapping[str, Fate] = {"text": _C}
SEARCH_RESULT_BLOCK_TYPES: Mapping[str, Fate] = {"text": _C}

# Blocks whose content is itself a list of blocks, and what that list may hold.
_NESTED: Mapping[str, Mapping[str, Fate]] = {
    "tool_result": TOOL_RESULT_BLOCK_TYPES,
    "search_result": SEARCH_RESULT_BLOCK_TYPES,
}


# -- refusing what cannot be converted --------------------------------------------------------------------


def check_convertible(request: Mapping[str, Any]) -> None:
    """Raise ``InvalidRequest`` naming the first block whose type has no place in another wire format.

    The request has passed the edge's validation, so the shapes around the blocks are known to be right.  This
    runs on every request to an OpenAI or Ollama upstream, over transcripts of thousands of blocks: paths are
    built only for the error.
    """
    system = request.get("system")
    if isinstance(system, list):
        _check_types(system, "system", SYSTEM_BLOCK_TYPES)
    for index, message in enumerate(request["messages"]):
        content = message["content"]
        if isinstance(content, str):
            continue
        if message["role"] == "system":
            _check_types(content, f"messages.{index}.content", SYSTEM_BLOCK_TYPES)
            continue
        for position, block in enumerate(content):
            kind = block["type"]
            if kind not in MESSAGE_BLOCK_TYPES:
                _unknown(kind, f"messages.{index}.content.{position}.type", MESSAGE_BLOCK_TYPES)
            if kind in _NESTED:
                nested = block.get("content")
                if isinstance(nested, list):
                    _check_types(nested, f"messages.{index}.content.{position}.content", _NESTED[kind])


def _check_types(blocks: list[Any], path: str, known: Mapping[str, Fate]) -> None:
    for position, block in enumerate(blocks):
        kind = block["type"]
        if kind not in known:
            _unknown(kind, f"{path}.{position}.type", known)


def _unknown(kind: str, field: str, known: Mapping[str, Fate]) -> NoReturn:
    expected = ", ".join(f"'{name}'" for name in known)
    raise InvalidRequest(
        f"Input tag '{kind}' found using 'type' does not match any of the expected tags: {expected}. "
        "Only an Anthropic-native provider can take other block types; route this request to one, or leave the "
        "block out.",
        field=field,
    )


# -- blocks that travel as text ---------------------------------------------------------------------------


def block_text(block: Mapping[str, Any]) -> str:
    """The text an ``AS_TEXT`` block becomes; "" when it holds nothing readable."""
    kind = block.get("type")
    if kind == "document":
        return _document_text(block)
    if kind == "search_result":
        return _search_result_text(block)
    if kind == "tool_reference":
        return f"Tool {block.get('tool_name')} is now available."
    if kind in ("server_tool_use", "mcp_tool_use"):
        server = f" on MCP server {block.get('server_name')}" if kind == "mcp_tool_use" else ""
        arguments = orjson.dumps(block.get("input") or {}).decode()
        return f"[tool {block.get('name')} ({block.get('id')}) was run by the provider{server} with input {arguments}]"
    if kind == "container_upload":
        return f"[file {block.get('file_id')} was uploaded to the code execution container]"
    if kind == "compaction":
        summary = block.get("content")
        return summary if isinstance(summary, str) else ""
    readable = "\n".join(_readable(block.get("content", block)))
    if kind == "browser_state":
        return f"[browser state]\n{readable}" if readable else ""
    return f"[result of tool call {block.get('tool_use_id')}]\n{readable}".rstrip()


# The fields of a server tool's result that carry something a model can read; encrypted_* fields are skipped.
_READABLE_FIELDS = (
    "title", "url", "text", "stdout", "stderr", "error_code", "content", "source", "data", "tabs", "tool_references",
    "tool_name",
)


def _readable(value: object) -> Iterator[str]:
    if isinstance(value, str):
        if value:
            yield value
    elif isinstance(value, list):
        for item in value:
            yield from _readable(item)
    elif isinstance(value, dict):
        for field in _READABLE_FIELDS:
            if field in value and not (field == "data" and value.get("type") not in (None, "text")):
                yield from _readable(value[field])


def _document_text(block: Mapping[str, Any]) -> str:
    source = block.get("source") or {}
    title = f"{block['title']}\n" if block.get("title") else ""
    if source.get("type") == "text":
        return f"{title}{source.get('data', '')}"
    if source.get("type") == "content" and isinstance(source.get("content"), list):
        return title + "\n".join(b.get("text", "") for b in source["content"] if b.get("type") == "text")
    if source.get("type") == "url":
        return f"{title}[document at {source.get('url')}]"
    media_type = source.get("media_type", source.get("type"))
    return f"{title}[a {media_type} document was left out: this provider cannot take it]"


def _search_result_text(block: Mapping[str, Any]) -> str:
    body = "\n".join(b.get("text", "") for b in block.get("content") or () if b.get("type") == "text")
    return f"{block.get('title', '')} ({block.get('source', '')})\n{body}"
