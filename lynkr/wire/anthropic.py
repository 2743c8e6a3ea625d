"""The Anthropic Messages API: request validation, stream assembly, and message <-> stream events.

Validation accepts everything the Claude Code CLI sends (role:"system" messages, adaptive thinking,
context_management, output_config, defer_loading tools, tool_reference results, cache_control with ttl,
unknown top-level keys) and rejects what no upstream could use, naming the offending field the way the real
API does (``messages.3.content.0.tool_use_id: Field required``).  Requests are validated in place and
returned as the same dict: no copy on the hot path.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, NoReturn, TypeGuard, cast

import orjson

from lynkr.errors import InvalidRequest, UpstreamError
from lynkr.wire.ids import generated_id, to_anthropic_id
from lynkr.wire.types import (
    ContentBlock,
    CountTokensRequest,
    Delta,
    Message,
    MessageDeltaBody,
    MessageParam,
    MessagesRequest,
    StreamEvent,
    TextBlock,
    ToolUseBlock,
    Usage,
)

__all__ = [
    "MessageAssembler",
    "is_small_request",
    "is_thinking_request",
    "UpstreamStreamError",
    "message_to_events",
    "parse_count_tokens_request",
    "parse_tool_arguments",
    "parse_messages_request",
    "session_id_from_metadata",
    "system_blocks",
    "without_unsigned_thinking",
]


class UpstreamStreamError(UpstreamError):
    """The upstream reported an error after its response had started: an SSE ``error`` event, an error chunk.

    ``status`` (kept as ``upstream_status``: ``status`` itself is the HTTP status lynkr answers with) and
    ``error_type`` (kept as ``upstream_type``) record what the upstream said, so the edge can forward it.
    """

    def __init__(self, message: str, *, status: int | None = None, error_type: str | None = None) -> None:
        super().__init__(message)
        self.upstream_status = status
        self.upstream_type = error_type


# -- validation -------------------------------------------------------------------------------------------


def _fail(field: str, message: str) -> NoReturn:
    raise InvalidRequest(message, field=field)


def _load_object(body: object) -> dict[str, Any]:
    if isinstance(body, (bytes, bytearray, memoryview, str)):
        try:
            body = orjson.loads(body)
        except orjson.JSONDecodeError as error:
            raise InvalidRequest(f"request body is not valid JSON: {error}") from None
    if not isinstance(body, dict):
        raise InvalidRequest("request body must be a JSON object")
    return body


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _str_field(obj: Mapping[str, Any], key: str, path: str, *, required: bool = True) -> None:
    value = obj.get(key)
    if value is None:
        if required:
            _fail(f"{path}{key}", "Field required")
        return
    if not isinstance(value, str):
        _fail(f"{path}{key}", "Input should be a valid string")


def _dict_field(obj: Mapping[str, Any], key: str, path: str) -> None:
    value = obj.get(key)
    if value is not None and not isinstance(value, dict):
        _fail(f"{path}{key}", "Input should be a valid dictionary")


def _check_cache_control(block: Mapping[str, Any], path: str) -> None:
    cache_control = block.get("cache_control")
    if cache_control is None:
        return
    if not isinstance(cache_control, dict):
        _fail(f"{path}cache_control", "Input should be a valid dictionary")
    _str_field(cache_control, "type", f"{path}cache_control.")
    _str_field(cache_control, "ttl", f"{path}cache_control.", required=False)


def _check_text(block: Mapping[str, Any], path: str) -> None:
    _str_field(block, "text", path)


# The media types the API takes for a base64 image; anything else (svg, bmp, heic) it refuses.
IMAGE_MEDIA_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")


def _check_image(block: Mapping[str, Any], path: str) -> None:
    source = block.get("source")
    if not isinstance(source, dict):
        _fail(f"{path}source", "Field required" if source is None else "Input should be a valid dictionary")
    kind = source.get("type")
    if kind == "base64":
        _str_field(source, "media_type", f"{path}source.")
        if source["media_type"] not in IMAGE_MEDIA_TYPES:
            allowed = ", ".join(f"'{media_type}'" for media_type in IMAGE_MEDIA_TYPES)
            _fail(f"{path}source.media_type", f"Input should be {allowed}; convert the image to one of them")
        _str_field(source, "data", f"{path}source.")
    elif kind == "url":
        _str_field(source, "url", f"{path}source.")
    elif kind == "file":
        _str_field(source, "file_id", f"{path}source.")
    elif kind is None:
        _fail(f"{path}source.type", "Field required")
    else:
        expected = "'base64', 'url', 'file'"
        _fail(f"{path}source.type", f"Input tag {kind!r} does not match any of the expected tags: {expected}")


def _check_document(block: Mapping[str, Any], path: str) -> None:
    source = block.get("source")
    if not isinstance(source, dict):
        _fail(f"{path}source", "Field required" if source is None else "Input should be a valid dictionary")
    _str_field(source, "type", f"{path}source.")


def _check_thinking(block: Mapping[str, Any], path: str) -> None:
    _str_field(block, "thinking", path)
    _str_field(block, "signature", path, required=False)


def _check_redacted_thinking(block: Mapping[str, Any], path: str) -> None:
    _str_field(block, "data", path)


def _check_tool_use(block: Mapping[str, Any], path: str) -> None:
    _str_field(block, "id", path)
    _str_field(block, "name", path)
    if not isinstance(block.get("input"), dict):
        _fail(f"{path}input", "Field required" if block.get("input") is None else "Input should be a valid dictionary")


def _check_tool_reference(block: Mapping[str, Any], path: str) -> None:
    _str_field(block, "tool_name", path)


def _check_mcp_tool_use(block: Mapping[str, Any], path: str) -> None:
    _check_tool_use(block, path)
    _str_field(block, "server_name", path)


def _check_server_tool_result(block: Mapping[str, Any], path: str) -> None:
    """web_search_tool_result, code_execution_tool_result, mcp_tool_result and the like: the content is the
    server's own shape, which only an Anthropic upstream reads; the id ties the result to its call."""
    tool_use_id = block.get("tool_use_id")
    if not isinstance(tool_use_id, str) or not tool_use_id:
        _fail(f"{path}tool_use_id", "Field required" if tool_use_id is None else "Input should be a valid string")


def _check_container_upload(block: Mapping[str, Any], path: str) -> None:
    _str_field(block, "file_id", path)


def _check_search_result(block: Mapping[str, Any], path: str) -> None:
    _str_field(block, "source", path)
    _str_field(block, "title", path)
    _check_blocks(block.get("content"), f"{path}content", _TEXT_ONLY)


def _check_tool_result(block: Mapping[str, Any], path: str) -> None:
    tool_use_id = block.get("tool_use_id")
    if not isinstance(tool_use_id, str) or not tool_use_id:
        _fail(f"{path}tool_use_id", "Field required" if tool_use_id is None else "Input should be a valid string")
    content = block.get("content")
    if content is not None and not isinstance(content, str):
        _check_blocks(content, f"{path}content", _TOOL_RESULT_BLOCKS)
    is_error = block.get("is_error")
    if is_error is not None and not isinstance(is_error, bool):
        _fail(f"{path}is_error", "Input should be a valid boolean")


BlockCheck = Callable[[Mapping[str, Any], str], None]

_TEXT_ONLY: dict[str, BlockCheck] = {"text": _check_text}
_TOOL_RESULT_BLOCKS: dict[str, BlockCheck] = {
    "text": _check_text,
    "image": _check_image,
    "document": _check_document,
    "search_result": _check_search_result,
    "tool_reference": _check_tool_reference,
}
_MESSAGE_BLOCKS: dict[str, BlockCheck] = {
    **_TOOL_RESULT_BLOCKS,
    "thinking": _check_thinking,
    "redacted_thinking": _check_redacted_thinking,
    "tool_use": _check_tool_use,
    "server_tool_use": _check_tool_use,
    "mcp_tool_use": _check_mcp_tool_use,
    "tool_result": _check_tool_result,
    "web_search_tool_result": _check_server_tool_result,
    "web_fetch_tool_result": _check_server_tool_result,
    "code_execution_tool_result": _check_server_tool_result,
    "bash_code_execution_tool_result": _check_server_tool_result,
    "text_editor_code_execution_tool_result": _check_server_tool_result,
    "tool_search_tool_result": _check_server_tool_result,
    "advisor_tool_result": _check_server_tool_result,
    "mcp_tool_result": _check_server_tool_result,
    "container_upload": _check_container_upload,
}
# Where a block may appear.  A tool_use in a user turn or a tool_result in an assistant turn cannot be
# converted for any upstream, and the real API refuses both.
_ONLY_IN = {"tool_use": "assistant", "server_tool_use": "assistant", "tool_result": "user"}


def _check_blocks(blocks: object, path: str, checks: Mapping[str, BlockCheck]) -> list[dict[str, Any]]:
    """Validate a list of blocks.

    A block of a type lynkr does not know is kept: an Anthropic-native upstream may know it (a newer API, a
    beta) and decides itself; the converters to other formats refuse it (``wire/blocks.py``).
    """
    if not isinstance(blocks, list):
        _fail(path, "Field required" if blocks is None else "Input should be a valid list")
    for index, block in enumerate(blocks):
        block_path = f"{path}.{index}."
        if not isinstance(block, dict):
            _fail(block_path[:-1], "Input should be a valid dictionary")
        kind = block.get("type")
        if not isinstance(kind, str):
            _fail(f"{block_path}type", "Field required")
        check = checks.get(kind)
        if check is not None:
            check(block, block_path)
        if "cache_control" in block:
            _check_cache_control(block, block_path)
    return blocks


def _check_system(system: object, path: str) -> None:
    if system is not None and not isinstance(system, str):
        _check_blocks(system, path, _TEXT_ONLY)


class _ToolPairing:
    """Every tool_use is answered by exactly one tool_result in the next user turn, and nothing else is.

    These are the real API's rules and wording; an upstream fed an unpaired transcript fails in a far less
    readable way.  role:"system" messages are skipped (the CLI may put one anywhere), and consecutive turns of
    one role count as one, as the real API merges them.
    """

    def __init__(self) -> None:
        self.open_ids: dict[str, None] = {}  # insertion-ordered set of ids awaiting a result
        self.open_at = 0
        self.answered: set[str] = set()
        self.seen_ids: set[str] = set()
        self.last_role = ""

    def assistant(self, index: int, blocks: list[Any]) -> None:
        if self.last_role != "assistant":
            self._close()
            self.open_ids = {}
            self.answered = set()
            self.open_at = index
        for position, block in enumerate(blocks):
            if block.get("type") == "tool_use":
                tool_id = block["id"]
                if tool_id in self.seen_ids:
                    _fail(f"messages.{index}.content.{position}", f"`tool_use` ids must be unique: {tool_id}")
                self.seen_ids.add(tool_id)
                self.open_ids[tool_id] = None
        self.last_role = "assistant"

    def user(self, index: int, blocks: list[Any]) -> None:
        for position, block in enumerate(blocks):
            if block.get("type") != "tool_result":
                continue
            tool_id = block["tool_use_id"]
            if tool_id not in self.open_ids:
                _fail(
                    f"messages.{index}.content.{position}",
                    f"unexpected `tool_use_id` found in `tool_result` blocks: {tool_id}. Each `tool_result` "
                    "block must have a corresponding `tool_use` block in the previous message.",
                )
            if tool_id in self.answered:
                _fail(
                    f"messages.{index}.content.{position}",
                    f"each tool_use must have a single result. Found multiple `tool_result` blocks with id: {tool_id}",
                )
            self.answered.add(tool_id)
        self.last_role = "user"

    def finish(self) -> None:
        # A transcript that ends on an assistant turn is a prefill; its tool_use blocks await no answer yet.
        if self.last_role == "user":
            self._close()

    def _close(self) -> None:
        missing = [tool_id for tool_id in self.open_ids if tool_id not in self.answered]
        if missing:
            _fail(
                f"messages.{self.open_at}",
                f"`tool_use` ids were found without `tool_result` blocks immediately after: {', '.join(missing)}. "
                "Each `tool_use` block must have a corresponding `tool_result` block in the next message.",
            )


def _check_messages(messages: object) -> None:
    if not isinstance(messages, list):
        _fail("messages", "Field required" if messages is None else "Input should be a valid list")
    if not messages:
        _fail("messages", "at least one message is required")
    pairing = _ToolPairing()
    for index, message in enumerate(messages):
        path = f"messages.{index}"
        if not isinstance(message, dict):
            _fail(path, "Input should be a valid dictionary")
        role = message.get("role")
        if role not in ("user", "assistant", "system"):
            _fail(f"{path}.role", "Input should be 'user', 'assistant' or 'system'")
        content = message.get("content")
        if isinstance(content, str):
            if role == "assistant":
                pairing.assistant(index, [])
            elif role == "user":
                pairing.user(index, [])
            continue
        if role == "system":
            _check_blocks(content, f"{path}.content", _TEXT_ONLY)
            continue
        blocks = _check_blocks(content, f"{path}.content", _MESSAGE_BLOCKS)
        for position, block in enumerate(blocks):
            allowed_role = _ONLY_IN.get(block["type"])
            if allowed_role is not None and allowed_role != role:
                _fail(
                    f"{path}.content.{position}",
                    f"`{block['type']}` blocks are only allowed in {allowed_role} messages",
                )
        if role == "assistant":
            pairing.assistant(index, blocks)
        else:
            pairing.user(index, blocks)
    pairing.finish()


# The API's pattern for a client tool's name; OpenAI-style upstreams allow a subset of it (64 characters).
TOOL_NAME = re.compile(r"[a-zA-Z0-9_-]{1,128}")


def _check_tools(tools: object) -> None:
    if tools is None:
        return
    if not isinstance(tools, list):
        _fail("tools", "Input should be a valid list")
    for index, tool in enumerate(tools):
        path = f"tools.{index}."
        if not isinstance(tool, dict):
            _fail(path[:-1], "Input should be a valid dictionary")
        _str_field(tool, "name", path)
        _str_field(tool, "type", path, required=False)
        if tool.get("type") in (None, "custom"):
            # A client tool needs a name the model can call and an object schema; server tools
            # (web_search_*, bash_*, ...) carry neither a schema nor a free name.
            if not TOOL_NAME.fullmatch(tool["name"]):
                _fail(f"{path}name", f"String should match pattern '^{TOOL_NAME.pattern}$'")
            schema = tool.get("input_schema")
            if not isinstance(schema, dict):
                wrong = "Field required" if "input_schema" not in tool else "Input should be a valid dictionary"
                _fail(f"{path}input_schema", wrong)
            if schema.get("type") != "object":
                wrong = "Field required" if "type" not in schema else "Input should be 'object'"
                _fail(f"{path}input_schema.type", wrong)
            _str_field(tool, "description", path, required=False)
        defer_loading = tool.get("defer_loading")
        if defer_loading is not None and not isinstance(defer_loading, bool):
            _fail(f"{path}defer_loading", "Input should be a valid boolean")
        if "cache_control" in tool:
            _check_cache_control(tool, path)


def _check_tool_choice(choice: object) -> None:
    if choice is None:
        return
    if not isinstance(choice, dict):
        _fail("tool_choice", "Input should be a valid dictionary")
    kind = choice.get("type")
    if kind not in ("auto", "any", "tool", "none"):
        _fail("tool_choice.type", "Input should be 'auto', 'any', 'tool' or 'none'")
    if kind == "tool":
        _str_field(choice, "name", "tool_choice.")
    flag = choice.get("disable_parallel_tool_use")
    if flag is not None and not isinstance(flag, bool):
        _fail("tool_choice.disable_parallel_tool_use", "Input should be a valid boolean")


def _check_thinking_config(thinking: object) -> None:
    # Types other than enabled/adaptive/disabled are kept: refusing one would break a newer CLI outright,
    # and converters treat anything but "disabled" as "the client wants thinking".
    if thinking is None:
        return
    if not isinstance(thinking, dict):
        _fail("thinking", "Input should be a valid dictionary")
    _str_field(thinking, "type", "thinking.")
    if thinking["type"] == "enabled":
        budget = thinking.get("budget_tokens")
        if not _is_int(budget) or budget < 1:
            wrong = "Field required" if budget is None else "Input should be a positive integer"
            _fail("thinking.budget_tokens", wrong)


def _check_output_format(output_config: Mapping[str, Any] | None) -> None:
    """Structured output: ``output_config.format`` is ``{"type": "json_schema", "schema": {...}}``."""
    if output_config is None or output_config.get("format") is None:
        return
    output_format = output_config["format"]
    if not isinstance(output_format, dict):
        _fail("output_config.format", "Input should be a valid dictionary")
    if output_format.get("type") != "json_schema":
        wrong = "Field required" if output_format.get("type") is None else "Input should be 'json_schema'"
        _fail("output_config.format.type", wrong)
    if not isinstance(output_format.get("schema"), dict):
        wrong = "Field required" if output_format.get("schema") is None else "Input should be a valid dictionary"
        _fail("output_config.format.schema", wrong)


def _check_model(data: Mapping[str, Any]) -> None:
    model = data.get("model")
    if not isinstance(model, str) or not model:
        _fail("model", "Field required" if model is None else "Input should be a non-empty string")


def _check_common(data: Mapping[str, Any]) -> None:
    """The fields messages and count_tokens share."""
    _check_model(data)
    _check_messages(data.get("messages"))
    _check_system(data.get("system"), "system")
    _check_tools(data.get("tools"))
    _check_tool_choice(data.get("tool_choice"))
    _check_thinking_config(data.get("thinking"))


def parse_messages_request(body: object) -> MessagesRequest:
    """Validate a ``POST /v1/messages`` body (raw bytes or parsed JSON); returns the same dict, typed."""
    data = _load_object(body)
    _check_model(data)
    max_tokens = data.get("max_tokens")
    if not _is_int(max_tokens) or max_tokens < 1:
        _fail("max_tokens", "Field required" if max_tokens is None else "Input should be an integer >= 1")
    _check_common(data)
    for key in ("temperature", "top_p"):
        if data.get(key) is not None and not _is_number(data[key]):
            _fail(key, "Input should be a valid number")
    if data.get("top_k") is not None and not _is_int(data["top_k"]):
        _fail("top_k", "Input should be a valid integer")
    if data.get("stream") is not None and not isinstance(data["stream"], bool):
        _fail("stream", "Input should be a valid boolean")
    stop = data.get("stop_sequences")
    if stop is not None and not (isinstance(stop, list) and all(isinstance(item, str) for item in stop)):
        _fail("stop_sequences", "Input should be a list of strings")
    metadata = data.get("metadata")
    if metadata is not None:
        if not isinstance(metadata, dict):
            _fail("metadata", "Input should be a valid dictionary")
        _str_field(metadata, "user_id", "metadata.", required=False)
    for key in ("context_management", "output_config"):
        _dict_field(data, key, "")
    _check_output_format(data.get("output_config"))
    if "cache_control" in data:
        _check_cache_control(data, "")
    return cast(MessagesRequest, data)


def parse_count_tokens_request(body: object) -> CountTokensRequest:
    """Validate a ``POST /v1/messages/count_tokens`` body; ``max_tokens`` is not needed there."""
    data = _load_object(body)
    _check_common(data)
    return cast(CountTokensRequest, data)


_LEGACY_SESSION = re.compile(r"_session_([0-9a-fA-F-]{8,})$")


def session_id_from_metadata(request: Mapping[str, Any]) -> str | None:
    """The CLI's session id from ``metadata.user_id``; None for anything unexpected.

    Current CLIs send a JSON string with ``session_id``; older ones sent ``user_<hash>_account_<uuid>_session_<uuid>``.
    """
    metadata = request.get("metadata")
    if not isinstance(metadata, dict):
        return None
    user_id = metadata.get("user_id")
    if not isinstance(user_id, str) or not user_id:
        return None
    if user_id[0] == "{":
        try:
            parsed = orjson.loads(user_id)
        except ValueError:
            return None
        session_id = parsed.get("session_id") if isinstance(parsed, dict) else None
        return session_id if isinstance(session_id, str) and session_id else None
    legacy = _LEGACY_SESSION.search(user_id)
    return legacy.group(1) if legacy else None


BILLING_HEADER_PREFIX = "x-anthropic-billing-header:"


def is_small_request(request: Mapping[str, Any]) -> bool:
    """A background call for the small/fast model: the CLI's Haiku-class requests."""
    return "haiku" in str(request.get("model", "")).lower()


def is_thinking_request(request: Mapping[str, Any]) -> bool:
    thinking = request.get("thinking")
    return isinstance(thinking, dict) and thinking.get("type") in ("enabled", "adaptive")


def without_unsigned_thinking(request: MessagesRequest) -> MessagesRequest:
    """The request minus assistant thinking blocks that carry no signature.

    Such blocks come from upstreams that do not sign their reasoning (an OpenAI-format model's reasoning becomes
    a thinking block with an empty signature); an upstream that verifies signatures rejects them.  Copies only
    what changes: most requests come back as they are.
    """
    messages = request.get("messages", [])
    changed: list[MessageParam] | None = None
    for index, message in enumerate(messages):
        content = message.get("content")
        if message.get("role") != "assistant" or not isinstance(content, list):
            continue
        kept = [block for block in content if not _unsigned_thinking(block)]
        if len(kept) != len(content):
            if changed is None:
                changed = list(messages)
            changed[index] = {**message, "content": kept or [{"type": "text", "text": "(thinking omitted)"}]}
    if changed is None:
        return request
    return {**request, "messages": changed}


def _unsigned_thinking(block: Any) -> bool:
    return isinstance(block, dict) and block.get("type") == "thinking" and not block.get("signature")


def system_blocks(request: Mapping[str, Any]) -> list[TextBlock]:
    """Top-level ``system`` followed by every role:"system" message, in order, as plain text blocks.

    For upstreams that take one system prompt.  Empty texts are dropped; cache_control is not carried.
    The CLI's ``x-anthropic-billing-header: ...`` line is dropped too: it means nothing to other models and
    changes on every request, so keeping it at the very front would defeat every upstream prefix cache.
    """
    blocks: list[TextBlock] = []
    _append_text(blocks, request.get("system"))
    for message in request["messages"]:
        if message["role"] == "system":
            _append_text(blocks, message["content"])
    return blocks


def _append_text(blocks: list[TextBlock], content: object) -> None:
    if isinstance(content, str):
        texts = [content]
    elif isinstance(content, list):
        texts = [block["text"] for block in content if block.get("type") == "text" and block.get("text")]
    else:
        return
    for text in texts:
        if text.startswith(BILLING_HEADER_PREFIX):
            text = text.partition("\n")[2].lstrip("\n")
        if text:
            blocks.append({"type": "text", "text": text})


# -- stream assembly --------------------------------------------------------------------------------------

_DELTA_FIELDS = {
    "text_delta": ("text", "text"),
    "thinking_delta": ("thinking", "thinking"),
    "signature_delta": ("signature", "signature"),
    "input_json_delta": ("partial_json", "input"),
}


class _PartialBlock:
    __slots__ = ("block", "parts")

    def __init__(self, block: dict[str, Any]) -> None:
        self.block = block
        self.parts: dict[str, list[str]] = {}  # block field -> fragments received for it

    def add(self, field: str, fragment: str) -> None:
        parts = self.parts.get(field)
        if parts is None:
            start = self.block.get(field)
            parts = self.parts[field] = [start] if isinstance(start, str) and start else []
        parts.append(fragment)

    def finished(self) -> dict[str, Any]:
        block = dict(self.block)
        for field, parts in self.parts.items():
            if field == "input":
                block["input"] = parse_tool_arguments("".join(parts), block.get("name"))
            else:
                block[field] = "".join(parts)
        if block.get("type") in ("tool_use", "server_tool_use") and not isinstance(block.get("input"), dict):
            block["input"] = {}
        return block


def parse_tool_arguments(arguments: object, tool_name: object) -> dict[str, Any]:
    """A tool call's arguments (JSON text, an object, or nothing) as a tool_use ``input``.

    Empty means ``{}``; text that is not a JSON object raises ``UpstreamError``: a client handed a half-parsed
    input would run the tool with the wrong arguments.
    """
    if isinstance(arguments, dict):
        return arguments
    if not isinstance(arguments, str) or not arguments.strip():
        return {}
    try:
        parsed = orjson.loads(arguments)
    except ValueError:
        raise UpstreamError(
            f"the upstream's arguments for tool {tool_name!r} are not valid JSON: {arguments[:200]!r}"
        ) from None
    if not isinstance(parsed, dict):
        raise UpstreamError(f"the upstream's arguments for tool {tool_name!r} are not a JSON object")
    return parsed


def function_call_block(call: Mapping[str, Any], *, message_id: str, index: int) -> ToolUseBlock:
    """A whole OpenAI-style ``tool_calls`` entry (``{id?, function: {name, arguments}}``) as a tool_use block."""
    function = call.get("function") or {}
    upstream_id = call.get("id")
    return {
        "type": "tool_use",
        "id": to_anthropic_id(upstream_id) if upstream_id else generated_id(message_id, index),
        "name": function.get("name") or "",
        "input": parse_tool_arguments(function.get("arguments"), function.get("name")),
    }


class MessageAssembler:
    """Folds Anthropic stream events into the final message (non-streaming clients and the event log).

    Tolerant of what broken upstreams send: events before ``message_start``, a delta for a block that was never
    started, a missing ``content_block_stop``.  An ``error`` event raises ``UpstreamStreamError``.
    """

    def __init__(self) -> None:
        self._message: dict[str, Any] = {
            "id": "",
            "type": "message",
            "role": "assistant",
            "model": "",
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
        }
        self._usage: dict[str, Any] = {}
        self._blocks: dict[int, _PartialBlock] = {}

    def feed(self, event: Mapping[str, Any]) -> None:
        kind = event.get("type")
        if kind == "content_block_delta":
            delta = event.get("delta") or {}
            mapping = _DELTA_FIELDS.get(str(delta.get("type")))
            partial = self._block(event.get("index", 0), delta.get("type"))
            if mapping is not None:
                source, target = mapping
                fragment = delta.get(source)
                if isinstance(fragment, str):
                    partial.add(target, fragment)
            elif delta.get("type") == "citations_delta":
                partial.block.setdefault("citations", []).append(delta.get("citation"))
        elif kind == "content_block_start":
            block = event.get("content_block")
            self._blocks[event.get("index", len(self._blocks))] = _PartialBlock(
                dict(block) if isinstance(block, dict) else {"type": "text", "text": ""}
            )
        elif kind == "message_start":
            message = event.get("message") or {}
            for key in ("id", "model", "stop_reason", "stop_sequence"):
                if message.get(key) is not None:
                    self._message[key] = message[key]
            self._merge_usage(message.get("usage"))
        elif kind == "message_delta":
            delta = event.get("delta") or {}
            for key in ("stop_reason", "stop_sequence"):
                if delta.get(key) is not None:
                    self._message[key] = delta[key]
            self._merge_usage(event.get("usage"))
        elif kind == "error":
            error = event.get("error") or {}
            raise UpstreamStreamError(
                str(error.get("message", "the upstream reported an error mid-stream")),
                error_type=error.get("type"),
            )
        # content_block_stop, message_stop, ping and unknown types change nothing: blocks are finished on demand.

    def _block(self, index: int, delta_type: object) -> _PartialBlock:
        partial = self._blocks.get(index)
        if partial is None:
            # "Content block not found": a delta without its start.  Keep the data in a block of the kind the
            # delta implies rather than lose it.
            kind = {"thinking_delta": "thinking", "signature_delta": "thinking", "input_json_delta": "tool_use"}
            partial = self._blocks[index] = _PartialBlock({"type": kind.get(str(delta_type), "text")})
        return partial

    def _merge_usage(self, usage: object) -> None:
        if isinstance(usage, dict):
            for key, value in usage.items():
                if value is not None:
                    self._usage[key] = value

    def message(self) -> Message:
        """The message so far; empty text blocks are dropped (the API refuses them when sent back)."""
        content = []
        for index in sorted(self._blocks):
            block = self._blocks[index].finished()
            if block.get("type") == "text" and not block.get("text"):
                continue
            content.append(block)
        usage = {"input_tokens": 0, "output_tokens": 0, **self._usage}
        return cast(Message, {**self._message, "content": content, "usage": usage})


def message_as_logged(assembler: MessageAssembler) -> dict[str, Any]:
    """The folded message as the log keeps it (and ``lynkr replay --check`` rebuilds it): a tool call whose
    arguments never became JSON is noted, not fatal."""
    try:
        return dict(assembler.message())
    except UpstreamError as error:
        return {"type": "message", "content": [], "assembly_error": str(error)}


# -- message -> events ------------------------------------------------------------------------------------

def message_to_events(message: Message) -> list[StreamEvent]:
    """The stream a complete message would have produced (for a cached or non-streaming upstream answer)."""
    usage = message.get("usage") or {"input_tokens": 0, "output_tokens": 0}
    start: Message = {**message, "content": [], "stop_reason": None, "stop_sequence": None, "usage": usage}
    events: list[StreamEvent] = [{"type": "message_start", "message": start}]
    index = 0
    for block in message.get("content") or []:
        opening: ContentBlock = block  # redacted_thinking and server tool results arrive whole in their start
        deltas: list[Delta] = []
        if block["type"] == "text":
            if not block["text"]:
                continue
            opening = {"type": "text", "text": ""}
            deltas.append({"type": "text_delta", "text": block["text"]})
        elif block["type"] == "thinking":
            opening = {"type": "thinking", "thinking": "", "signature": ""}
            if block["thinking"]:
                deltas.append({"type": "thinking_delta", "thinking": block["thinking"]})
            if block.get("signature"):
                deltas.append({"type": "signature_delta", "signature": block["signature"]})
        elif block["type"] in ("tool_use", "server_tool_use"):
            tool = cast(dict[str, Any], block)
            opening = cast(ContentBlock, {**tool, "input": {}})
            deltas.append({"type": "input_json_delta", "partial_json": orjson.dumps(tool.get("input") or {}).decode()})
        events.append({"type": "content_block_start", "index": index, "content_block": opening})
        events.extend({"type": "content_block_delta", "index": index, "delta": delta} for delta in deltas)
        events.append({"type": "content_block_stop", "index": index})
        index += 1
    stop: MessageDeltaBody = {"stop_reason": message.get("stop_reason"), "stop_sequence": message.get("stop_sequence")}
    events.append({"type": "message_delta", "delta": stop, "usage": cast(Usage, dict(usage))})
    events.append({"type": "message_stop"})
    return events
