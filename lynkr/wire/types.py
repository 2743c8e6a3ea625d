"""TypedDicts for the Anthropic Messages API shapes lynkr reads and writes.

These describe the fields lynkr looks at; at run time the dicts may carry more (a newer CLI's fields, server
tool blocks), and lynkr keeps them.  Blocks are tagged unions on ``type``, so ``block["type"] == "text"``
narrows for mypy.
"""

from __future__ import annotations

from typing import Any, Literal, NotRequired, Required, TypedDict, Union

JSONObject = dict[str, Any]


class CacheControl(TypedDict, total=False):
    type: Required[str]  # "ephemeral"
    ttl: str  # "5m" | "1h"


# -- content blocks ---------------------------------------------------------------------------------------


class TextBlock(TypedDict):
    type: Literal["text"]
    text: str
    cache_control: NotRequired[CacheControl]
    citations: NotRequired[list[JSONObject]]


class Base64Source(TypedDict):
    type: Literal["base64"]
    media_type: str
    data: str


class URLSource(TypedDict):
    type: Literal["url"]
    url: str


class ImageBlock(TypedDict):
    type: Literal["image"]
    source: Base64Source | URLSource
    cache_control: NotRequired[CacheControl]


class DocumentBlock(TypedDict):
    type: Literal["document"]
    source: JSONObject  # base64 pdf, plain text, content blocks, url or file
    title: NotRequired[str]
    context: NotRequired[str]
    cache_control: NotRequired[CacheControl]


class SearchResultBlock(TypedDict):
    type: Literal["search_result"]
    source: str
    title: str
    content: list[TextBlock]
    cache_control: NotRequired[CacheControl]


class ThinkingBlock(TypedDict):
    type: Literal["thinking"]
    thinking: str
    signature: str  # "" when the producer sent none; such a block must never go to a verifying upstream


class RedactedThinkingBlock(TypedDict):
    type: Literal["redacted_thinking"]
    data: str


class ToolUseBlock(TypedDict):
    type: Literal["tool_use"]
    id: str
    name: str
    input: JSONObject
    cache_control: NotRequired[CacheControl]


class ServerToolUseBlock(TypedDict):
    type: Literal["server_tool_use"]
    id: str
    name: str
    input: JSONObject


class ToolReferenceBlock(TypedDict):
    """Tool search: "this tool is now loaded" (inside a tool_result)."""

    type: Literal["tool_reference"]
    tool_name: str


ToolResultContentBlock = Union[TextBlock, ImageBlock, ToolReferenceBlock, SearchResultBlock, DocumentBlock]


class ToolResultBlock(TypedDict):
    type: Literal["tool_result"]
    tool_use_id: str
    content: NotRequired[str | list[ToolResultContentBlock]]
    is_error: NotRequired[bool]
    cache_control: NotRequired[CacheControl]


ContentBlock = Union[
    TextBlock,
    ImageBlock,
    DocumentBlock,
    SearchResultBlock,
    ThinkingBlock,
    RedactedThinkingBlock,
    ToolUseBlock,
    ServerToolUseBlock,
    ToolResultBlock,
]

# -- request ----------------------------------------------------------------------------------------------

Role = Literal["user", "assistant", "system"]


class MessageParam(TypedDict):
    role: Role
    content: str | list[ContentBlock]
    output_config: NotRequired[JSONObject]  # the CLI's per-turn control rides on role:"system" messages


class Tool(TypedDict, total=False):
    name: Required[str]
    type: str  # absent or "custom" for client tools; "web_search_20250305" etc. for server tools
    description: str
    input_schema: JSONObject
    cache_control: CacheControl
    defer_loading: bool
    strict: bool


class ToolChoice(TypedDict, total=False):
    type: Required[Literal["auto", "any", "tool", "none"]]
    name: str
    disable_parallel_tool_use: bool


class ThinkingConfig(TypedDict, total=False):
    type: Required[str]  # "enabled" | "adaptive" | "disabled" (kept open: a newer CLI may send more)
    budget_tokens: int
    display: str


class Metadata(TypedDict, total=False):
    user_id: str  # the CLI sends a JSON *string*: {"device_id":..,"account_uuid":..,"session_id":..}


class MessagesRequest(TypedDict, total=False):
    model: Required[str]
    max_tokens: Required[int]
    messages: Required[list[MessageParam]]
    system: str | list[TextBlock]
    stream: bool
    metadata: Metadata
    stop_sequences: list[str]
    temperature: float
    top_p: float
    top_k: int
    thinking: ThinkingConfig
    tools: list[Tool]
    tool_choice: ToolChoice
    cache_control: CacheControl
    context_management: JSONObject
    output_config: JSONObject
    service_tier: str
    container: str | JSONObject


class CountTokensRequest(TypedDict, total=False):
    model: Required[str]
    messages: Required[list[MessageParam]]
    system: str | list[TextBlock]
    tools: list[Tool]
    tool_choice: ToolChoice
    thinking: ThinkingConfig


# -- response ---------------------------------------------------------------------------------------------


class Usage(TypedDict, total=False):
    input_tokens: Required[int]
    output_tokens: Required[int]
    cache_creation_input_tokens: int
    cache_read_input_tokens: int


class Message(TypedDict):
    id: str
    type: Literal["message"]
    role: Literal["assistant"]
    model: str
    content: list[ContentBlock]
    stop_reason: str | None
    stop_sequence: str | None
    usage: Usage


# -- stream events (each is exactly one SSE data: line) --------------------------------------------------


class TextDelta(TypedDict):
    type: Literal["text_delta"]
    text: str


class InputJSONDelta(TypedDict):
    type: Literal["input_json_delta"]
    partial_json: str


class ThinkingDelta(TypedDict):
    type: Literal["thinking_delta"]
    thinking: str


class SignatureDelta(TypedDict):
    type: Literal["signature_delta"]
    signature: str


class CitationsDelta(TypedDict):
    type: Literal["citations_delta"]
    citation: JSONObject


Delta = Union[TextDelta, InputJSONDelta, ThinkingDelta, SignatureDelta, CitationsDelta]


class MessageStartEvent(TypedDict):
    type: Literal["message_start"]
    message: Message


class ContentBlockStartEvent(TypedDict):
    type: Literal["content_block_start"]
    index: int
    content_block: ContentBlock


class ContentBlockDeltaEvent(TypedDict):
    type: Literal["content_block_delta"]
    index: int
    delta: Delta


class ContentBlockStopEvent(TypedDict):
    type: Literal["content_block_stop"]
    index: int


class MessageDeltaBody(TypedDict):
    stop_reason: str | None
    stop_sequence: str | None


class MessageDeltaEvent(TypedDict):
    type: Literal["message_delta"]
    delta: MessageDeltaBody
    usage: Usage


class MessageStopEvent(TypedDict):
    type: Literal["message_stop"]


class PingEvent(TypedDict):
    type: Literal["ping"]


class ErrorDetail(TypedDict):
    type: str
    message: str


class ErrorEvent(TypedDict):
    type: Literal["error"]
    error: ErrorDetail


StreamEvent = Union[
    MessageStartEvent,
    ContentBlockStartEvent,
    ContentBlockDeltaEvent,
    ContentBlockStopEvent,
    MessageDeltaEvent,
    MessageStopEvent,
    PingEvent,
    ErrorEvent,
]
