"""An MCP ``CallToolResult`` as the content of an Anthropic ``tool_result`` block.

Text stays text; images become base64 image blocks; an embedded text resource becomes a text block that names
its URI; binary resources, audio and resource links, which a ``tool_result`` cannot carry, become a one-line
note saying what was there; structured content is added as JSON text when no text block carries it;
``isError`` becomes ``is_error``.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from lynkr.tools.base import JsonObject, ToolResult

if TYPE_CHECKING:
    from mcp import types

# The image types an Anthropic image block accepts; others are described instead.
IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})


def tool_result(result: types.CallToolResult) -> ToolResult:
    blocks: list[JsonObject] = [_block(item) for item in result.content]
    structured = result.structured_content
    # Servers usually put the same data in a text block too; add it only when no text says it already.
    if structured is not None and not any(block.get("type") == "text" for block in blocks):
        blocks.append({"type": "text", "text": json.dumps(structured, ensure_ascii=False)})
    if not blocks:
        blocks.append({"type": "text", "text": "(the MCP tool returned no content)"})
    return ToolResult(content=blocks, is_error=bool(result.is_error))


def _block(item: Any) -> JsonObject:
    from mcp import types  # loaded by now: a server answered

    if isinstance(item, types.TextContent):
        return {"type": "text", "text": item.text}
    if isinstance(item, types.ImageContent):
        if item.mime_type in IMAGE_TYPES:
            return {"type": "image", "source": {"type": "base64", "media_type": item.mime_type, "data": item.data}}
        return _note(f"an image of type {item.mime_type} ({_decoded_size(item.data)} bytes), not shown")
    if isinstance(item, types.AudioContent):
        return _note(f"audio of type {item.mime_type} ({_decoded_size(item.data)} bytes), not shown")
    if isinstance(item, types.EmbeddedResource):
        resource = item.resource
        if isinstance(resource, types.TextResourceContents):
            return {"type": "text", "text": f"[resource {resource.uri}]\n{resource.text}"}
        mime = resource.mime_type or "unknown type"
        return _note(f"a binary resource {resource.uri} ({mime}, {_decoded_size(resource.blob)} bytes), not shown")
    if isinstance(item, types.ResourceLink):
        return _note(f"a link to the resource {item.uri} ({item.name})")
    return _note(f"content of type {getattr(item, 'type', type(item).__name__)!r}, not shown")


def _note(what: str) -> JsonObject:
    return {"type": "text", "text": f"[the MCP tool returned {what}]"}


def _decoded_size(data: str) -> int:
    return len(data) * 3 // 4 - data[-2:].count("=")

