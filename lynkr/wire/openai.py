"""Anthropic Messages <-> OpenAI chat completions (OpenAI, Azure OpenAI, Databricks, OpenRouter, vLLM, llama.cpp).

``build_request`` maps an Anthropic request to a chat-completions body.  ``StreamConverter`` turns parsed
stream chunks into Anthropic events as they arrive; ``convert_response`` does the same for a whole response.

Tool calls in a stream.  OpenAI-style servers send each call's arguments as string fragments keyed by the
call's ``index``; Anthropic clients need one block at a time.  Each call moves through these states:

    state     fragment for this call             what moves it on
    PENDING   buffered                           it is the earliest unclosed call and its name is known -> OPEN
    OPEN      passed on at once (input_json)     a later call shows up and this call's arguments parse as
                                                 JSON, or text/thinking arrives, or the stream ends -> CLOSED
    CLOSED    whitespace or a repeated snapshot  more argument text is an upstream protocol error
              is ignored

So the usual streams (one call after another, several calls in one chunk) pass every fragment through the
moment it arrives; only a server that truly interleaves two calls' fragments gets the later call buffered
until the earlier one is complete.

Cumulative snapshots.  Some servers resend a call's whole arguments string each time.  The second non-empty
fragment decides: if it starts with everything received so far, the call is in snapshot mode and only the new
suffix goes out.  (A delta stream whose second fragment repeats the first, as ``{"a":`` then ``{"a":1}}``,
is indistinguishable and is read as snapshots; real servers' first fragments are ``{`` or ``{"``, which cannot
repeat in valid JSON.)
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Mapping
from typing import Any, cast

import orjson

from lynkr.wire.anthropic import UpstreamStreamError, function_call_block, system_blocks
from lynkr.wire.blocks import MESSAGE_BLOCK_TYPES, Fate, block_text, check_convertible
from lynkr.wire.emitter import EventWriter
from lynkr.wire.ids import ToolIdScheme, generated_id, to_anthropic_id, upstream_id_mapper
from lynkr.wire.types import ContentBlock, Message, MessagesRequest, StreamEvent, Usage

__all__ = ["StreamConverter", "UpstreamStreamError", "build_request", "convert_response", "response_format"]

STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}

_TOOL_CHOICE: dict[str, str] = {"auto": "auto", "any": "required", "none": "none"}

# -- request ----------------------------------------------------------------------------------------------


def build_request(
    request: MessagesRequest,
    *,
    model: str,
    max_tokens: int,
    stream: bool,
    reasoning_model: bool = False,
    tool_ids: ToolIdScheme = "standard",
) -> dict[str, Any]:
    """The chat-completions body for an Anthropic request.

    Raises ``InvalidRequest`` for a block type no OpenAI-style upstream can take (``wire/blocks.py``).
    Anthropic-only fields (thinking, context_management, metadata, cache_control, service_tier, container,
    top_k, defer_loading, strict) are left out: strict upstreams refuse unknown ones.  ``output_config.format``
    becomes ``response_format``; ``tool_ids`` picks the form of the tool-call ids sent upstream (``wire/ids.py``).
    """
    check_convertible(request)
    upstream_id = upstream_id_mapper(tool_ids)
    messages: list[dict[str, Any]] = []
    system = "\n\n".join(block["text"] for block in system_blocks(request))
    if system:
        messages.append({"role": "system", "content": system})
    for message in request["messages"]:
        role = message["role"]
        if role == "assistant":
            _assistant_message(messages, message["content"], upstream_id)
        elif role == "user":
            _user_messages(messages, message["content"], upstream_id)
    body: dict[str, Any] = {"model": model, "messages": messages, "stream": stream}
    if reasoning_model:
        # o-series and gpt-5 class models take max_completion_tokens and refuse sampling parameters.
        body["max_completion_tokens"] = max_tokens
    else:
        body["max_tokens"] = max_tokens
        for key in ("temperature", "top_p"):
            if request.get(key) is not None:
                body[key] = request[key]
    if stream:
        body["stream_options"] = {"include_usage": True}
    if request.get("stop_sequences"):
        body["stop"] = request["stop_sequences"]
    output_format = (request.get("output_config") or {}).get("format")
    if output_format is not None:
        body["response_format"] = response_format(output_format["schema"])
    tools = [
        _function_tool(tool)
        for tool in request.get("tools") or ()
        if isinstance(tool.get("input_schema"), dict)  # server tools (web_search_*, ...) have no schema
    ]
    choice = request.get("tool_choice")
    # OpenAI refuses tool_choice and parallel_tool_calls without tools.
    if tools:
        body["tools"] = tools
        if choice is not None:
            if choice["type"] == "tool":
                body["tool_choice"] = {"type": "function", "function": {"name": choice.get("name", "")}}
            else:
                body["tool_choice"] = _TOOL_CHOICE[choice["type"]]
            if choice.get("disable_parallel_tool_use") and choice["type"] != "none":
                body["parallel_tool_calls"] = False
    return body


_SCHEMA_NAME = re.compile(r"[^a-zA-Z0-9_-]+")


def response_format(schema: Mapping[str, Any]) -> dict[str, Any]:
    """OpenAI's ``response_format`` for a JSON schema.

    OpenAI needs a name (its pattern is the tool-name one, 64 at most): the schema's title where it has one.
    ``strict`` is asked for only where OpenAI's strict mode would accept the schema (every object closed with
    ``additionalProperties: false`` and every property required); Anthropic's structured output also allows
    optional properties, and a strict request with such a schema would be refused outright.
    """
    title = schema.get("title")
    name = _SCHEMA_NAME.sub("_", title)[:64] if isinstance(title, str) and title.strip() else ""
    return {
        "type": "json_schema",
        "json_schema": {"name": name.strip("_") or "output", "schema": schema, "strict": _strict_compatible(schema)},
    }


def _strict_compatible(schema: object) -> bool:
    if isinstance(schema, list):
        return all(_strict_compatible(item) for item in schema)
    if not isinstance(schema, dict):
        return True
    properties = schema.get("properties")
    if schema.get("type") == "object" or isinstance(properties, dict):
        if schema.get("additionalProperties") is not False:
            return False
        names = set(properties) if isinstance(properties, dict) else set()
        required = schema.get("required")
        if not names <= set(required if isinstance(required, list) else ()):
            return False
    nested = [*(properties.values() if isinstance(properties, dict) else ())]
    for key in ("items", "anyOf", "allOf", "oneOf", "prefixItems"):
        if key in schema:
            nested.append(schema[key])
    for key in ("$defs", "definitions"):
        if isinstance(schema.get(key), dict):
            nested.extend(schema[key].values())
    return all(_strict_compatible(item) for item in nested)


def _function_tool(tool: Mapping[str, Any]) -> dict[str, Any]:
    function: dict[str, Any] = {"name": tool["name"], "parameters": tool["input_schema"]}
    if tool.get("description"):
        function["description"] = tool["description"]
    return {"type": "function", "function": function}


def _assistant_message(
    messages: list[dict[str, Any]], content: str | list[ContentBlock], upstream_id: Callable[[str], str]
) -> None:
    if isinstance(content, str):
        if content:
            messages.append({"role": "assistant", "content": content})
        return
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for block in content:
        if block["type"] == "text":
            if block["text"]:
                texts.append(block["text"])
        elif block["type"] == "tool_use":
            calls.append(
                {
                    "id": upstream_id(block["id"]),
                    "type": "function",
                    "function": {"name": block["name"], "arguments": orjson.dumps(block["input"]).decode()},
                }
            )
        elif MESSAGE_BLOCK_TYPES[block["type"]] is Fate.AS_TEXT:
            text = block_text(cast(Mapping[str, Any], block))
            if text:
                texts.append(f"\n{text}\n")  # the texts of a turn are joined with nothing between them
        # thinking blocks are dropped: no OpenAI-style upstream can verify them, and unsigned ones
        # (signature "") must never reach one that does.
    if not texts and not calls:
        return  # OpenAI refuses an assistant message with neither content nor tool_calls
    assistant: dict[str, Any] = {"role": "assistant", "content": "".join(texts) or None}
    if calls:
        assistant["tool_calls"] = calls
    messages.append(assistant)


def _user_messages(
    messages: list[dict[str, Any]], content: str | list[ContentBlock], upstream_id: Callable[[str], str]
) -> None:
    """Tool results become ``tool`` messages first (they must follow the assistant's tool_calls at once);
    images from tool results and the turn's own content follow in one user message."""
    if isinstance(content, str):
        messages.append({"role": "user", "content": content})
        return
    parts: list[dict[str, Any]] = []
    moved_images: list[dict[str, Any]] = []
    for block in content:
        if block["type"] == "text":
            if block["text"]:
                parts.append({"type": "text", "text": block["text"]})
        elif block["type"] == "image":
            parts.append(_image_part(block["source"]))
        elif block["type"] == "tool_result":
            text, images = _tool_result_content(block.get("content"))
            if block.get("is_error"):
                text = f"Error: {text}"
            if images:
                moved_images.extend(images)
                text = f"{text}\n(the result's {len(images)} image(s) follow in the next user message)".lstrip()
            messages.append({"role": "tool", "tool_call_id": upstream_id(block["tool_use_id"]), "content": text})
        elif MESSAGE_BLOCK_TYPES[block["type"]] is Fate.AS_TEXT:
            text = block_text(cast(Mapping[str, Any], block))
            if text:
                parts.append({"type": "text", "text": text})
    parts = moved_images + parts
    if not parts:
        return
    if all(part["type"] == "text" for part in parts):
        # A plain string is what every OpenAI-compatible server understands.
        messages.append({"role": "user", "content": "\n\n".join(part["text"] for part in parts)})
    else:
        messages.append({"role": "user", "content": parts})


def _image_part(source: Mapping[str, Any]) -> dict[str, Any]:
    if source.get("type") == "base64":
        return {"type": "image_url", "image_url": {"url": f"data:{source['media_type']};base64,{source['data']}"}}
    if source.get("type") == "url":
        return {"type": "image_url", "image_url": {"url": source["url"]}}
    kind = source.get("type")
    return {"type": "text", "text": f"[an image from a {kind!r} source was left out: this provider cannot take it]"}


def _tool_result_content(content: object) -> tuple[str, list[dict[str, Any]]]:
    """The text of a tool result and the image parts it carried."""
    if content is None:
        return "", []
    if isinstance(content, str):
        return content, []
    texts: list[str] = []
    images: list[dict[str, Any]] = []
    for block in cast(list[Mapping[str, Any]], content):
        kind = block.get("type")
        if kind == "text":
            texts.append(block["text"])
        elif kind == "image":
            images.append(_image_part(block["source"]))
        else:  # check_convertible let through only the types of TOOL_RESULT_BLOCK_TYPES: the rest go as text
            text = block_text(block)
            if text:
                texts.append(text)
    return "\n".join(texts), images


# -- stream -----------------------------------------------------------------------------------------------


class _Call(enum.Enum):
    PENDING = "pending"
    OPEN = "open"
    CLOSED = "closed"


class _ToolCall:
    # Arguments are kept as a list of pieces and joined only when the whole text is needed: a Write call
    # carrying a large file arrives in thousands of fragments, and repeated string concatenation would be
    # quadratic.
    __slots__ = ("upstream_id", "name", "parts", "unsent", "snapshots", "state")

    def __init__(self) -> None:
        self.upstream_id: str | None = None
        self.name: str | None = None
        self.parts: list[str] = []  # the arguments received so far, with snapshots reduced to their new suffix
        self.unsent: list[str] = []  # the pieces not yet passed on
        self.snapshots: bool | None = None  # decided by the second non-empty fragment
        self.state = _Call.PENDING

    def arguments(self) -> str:
        if len(self.parts) > 1:
            self.parts[:] = ["".join(self.parts)]
        return self.parts[0] if self.parts else ""

    def receive(self, fragment: str) -> str:
        """Take one fragment; return the genuinely new text."""
        if not fragment:
            return ""
        if self.snapshots is None and self.parts:
            self.snapshots = fragment.startswith(self.arguments())
        if self.snapshots:
            so_far = self.arguments()
            if fragment.startswith(so_far):
                fragment = fragment[len(so_far):]
                if not fragment:
                    return ""
        self.parts.append(fragment)
        self.unsent.append(fragment)
        return fragment

    def take_unsent(self) -> str:
        text = "".join(self.unsent)
        self.unsent.clear()
        return text

    def complete(self) -> bool:
        try:
            orjson.loads(self.arguments())
        except orjson.JSONDecodeError:
            return False
        return True


class StreamConverter:
    """Parsed chat-completion chunks in, Anthropic events out."""

    def __init__(self, *, message_id: str, model: str, input_tokens: int = 0) -> None:
        self._writer = EventWriter(message_id=message_id, model=model, input_tokens=input_tokens)
        self._calls: dict[int, _ToolCall] = {}
        self._order: list[int] = []  # tool-call indices in the order they appeared
        self._next = 0  # position in _order of the earliest call not yet closed
        self._finish_reason: str | None = None
        self._refused = False
        self._usage: Mapping[str, Any] | None = None

    def feed(self, chunk: Mapping[str, Any]) -> list[StreamEvent]:
        writer = self._writer
        writer.start()
        error = chunk.get("error")
        if error is not None:
            raise _stream_error(error)
        usage = chunk.get("usage")
        if usage:
            self._usage = usage
        # Azure's first chunk (choices [] with prompt_filter_results) and the usage chunk carry no choices.
        for choice in chunk.get("choices") or ():
            if choice.get("index", 0) != 0:
                continue  # n > 1 is never requested; ignore stray alternatives
            delta = choice.get("delta") or choice.get("message") or {}
            self._delta(delta)
            finish_reason = choice.get("finish_reason")
            if finish_reason:
                if finish_reason == "error":
                    raise UpstreamStreamError("the upstream ended the stream with finish_reason 'error'")
                self._finish_reason = finish_reason
                self._close_calls()
                writer.close()
        return writer.take()

    def _delta(self, delta: Mapping[str, Any]) -> None:
        writer = self._writer
        reasoning = delta.get("reasoning_content") or delta.get("reasoning")
        if reasoning and isinstance(reasoning, str):
            self._close_calls()
            writer.thinking(reasoning)
        content = delta.get("content")
        if content and isinstance(content, str):
            self._close_calls()
            writer.text(content)
        refusal = delta.get("refusal")
        if refusal and isinstance(refusal, str):
            self._refused = True
            self._close_calls()
            writer.text(refusal)
        tool_calls = delta.get("tool_calls")
        if tool_calls:
            for call in tool_calls:
                self._call_fragment(call.get("index", 0), call)
        elif delta.get("function_call"):
            # The legacy functions API: one call, no id.
            self._call_fragment(0, {"function": delta["function_call"]})

    def _call_fragment(self, index: int, fragment: Mapping[str, Any]) -> None:
        call = self._calls.get(index)
        if call is None:
            call = self._calls[index] = _ToolCall()
            self._order.append(index)
        if fragment.get("id") and call.upstream_id is None:
            call.upstream_id = fragment["id"]
        function = fragment.get("function") or {}
        if function.get("name") and call.name is None:
            call.name = function["name"]
        arguments = function.get("arguments")
        if isinstance(arguments, dict):
            arguments = orjson.dumps(arguments).decode()  # a few servers send objects, as Ollama does
        new = call.receive(arguments) if isinstance(arguments, str) else ""
        if call.state is _Call.CLOSED:
            if new.strip():
                raise UpstreamStreamError(f"tool call {index} received more arguments after it had ended")
            return
        self._advance()

    def _advance(self) -> None:
        """Stream the earliest unclosed call; move past it once a later call exists and it is complete."""
        writer = self._writer
        while self._next < len(self._order):
            index = self._order[self._next]
            call = self._calls[index]
            if call.state is _Call.PENDING:
                if call.name is None:
                    return
                self._open(index, call)
            writer.tool_json(call.take_unsent())
            if self._next + 1 < len(self._order) and call.complete():
                writer.close()
                call.state = _Call.CLOSED
                self._next += 1
                continue
            return

    def _open(self, index: int, call: _ToolCall) -> None:
        tool_id = (
            to_anthropic_id(call.upstream_id)
            if call.upstream_id
            else generated_id(self._writer.message_id, index)
        )
        self._writer.open_tool(tool_id, call.name or "")
        call.state = _Call.OPEN

    def _close_calls(self) -> None:
        """Write out every unclosed call (text, thinking or the end of the stream follows)."""
        writer = self._writer
        while self._next < len(self._order):
            index = self._order[self._next]
            call = self._calls[index]
            if call.state is _Call.PENDING:
                if call.name is None:
                    raise UpstreamStreamError(f"tool call {index} never received a function name")
                self._open(index, call)
            writer.tool_json(call.take_unsent())
            writer.close()
            call.state = _Call.CLOSED
            self._next += 1

    def finish(self) -> list[StreamEvent]:
        """End of stream ([DONE] or EOF): close blocks, then message_delta with usage and message_stop."""
        writer = self._writer
        writer.start()
        self._close_calls()
        writer.finish(
            stop_reason=_stop_reason(self._finish_reason, tool_use=writer.tool_uses > 0, refused=self._refused),
            usage=_usage(self._usage, writer.input_tokens, writer.estimated_output_tokens()),
        )
        return writer.take()


def _stream_error(error: object) -> UpstreamStreamError:
    if isinstance(error, Mapping):
        code = error.get("code")
        status = code if isinstance(code, int) and not isinstance(code, bool) else None
        return UpstreamStreamError(
            str(error.get("message") or "the upstream reported an error mid-stream"),
            status=status,
            error_type=str(error["type"]) if error.get("type") else None,
        )
    return UpstreamStreamError(str(error))


def _stop_reason(finish_reason: str | None, *, tool_use: bool, refused: bool) -> str:
    stop_reason = STOP_REASONS.get(finish_reason or "", "end_turn")
    if stop_reason == "end_turn":
        # Some servers say "stop" after tool calls; the client must still run the tools.
        if tool_use:
            return "tool_use"
        if refused:
            return "refusal"
    return stop_reason


def _usage(upstream: Mapping[str, Any] | None, estimated_input: int, estimated_output: int) -> Usage:
    """Anthropic usage from OpenAI usage; estimates stand in when the upstream sent none (an interrupted
    stream, a server that ignores include_usage): zero usage would wreck the client's context tracking."""
    if not upstream:
        return {
            "input_tokens": estimated_input,
            "output_tokens": estimated_output,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
        }
    prompt = upstream.get("prompt_tokens")
    completion = upstream.get("completion_tokens")
    details = upstream.get("prompt_tokens_details") or {}
    cached = details.get("cached_tokens") or upstream.get("prompt_cache_hit_tokens") or 0
    return {
        "input_tokens": max(prompt - cached, 0) if isinstance(prompt, int) else estimated_input,
        "output_tokens": completion if isinstance(completion, int) else estimated_output,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": cached if isinstance(cached, int) else 0,
    }


# -- whole response ---------------------------------------------------------------------------------------


def convert_response(response: Mapping[str, Any], *, message_id: str, model: str) -> Message:
    """A non-streaming chat completion as an Anthropic message.  Our own id is used: Databricks sends null."""
    if response.get("error") is not None:
        raise _stream_error(response["error"])
    choices = response.get("choices") or [{}]
    choice = choices[0]
    message = choice.get("message") or {}
    content: list[ContentBlock] = []
    reasoning = message.get("reasoning_content") or message.get("reasoning")
    if reasoning and isinstance(reasoning, str):
        content.append({"type": "thinking", "thinking": reasoning, "signature": ""})
    text = message.get("content")
    if isinstance(text, list):
        text = "".join(part.get("text", "") for part in text if isinstance(part, Mapping))
    refusal = message.get("refusal")
    if not text and isinstance(refusal, str):
        text = refusal
    if text and isinstance(text, str):
        content.append({"type": "text", "text": text})
    content.extend(
        function_call_block(call, message_id=message_id, index=index)
        for index, call in enumerate(message.get("tool_calls") or ())
    )
    tool_use = any(block["type"] == "tool_use" for block in content)
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": _stop_reason(choice.get("finish_reason"), tool_use=tool_use, refused=bool(refusal)),
        "stop_sequence": None,
        "usage": _usage(response.get("usage"), 0, 0),
    }
