"""Anthropic Messages <-> Ollama's native ``POST /api/chat`` (NDJSON, one object per line).

Ollama sends each tool call whole, with ``arguments`` as a JSON object and usually no id, so a call becomes one
tool_use block whose input goes out as a single ``input_json_delta``, with an id derived from the message id.
Tool results go back as ``role: "tool"`` messages naming the tool (``tool_name``), which Ollama's templates use
in place of ids.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

import orjson

from lynkr.wire.anthropic import UpstreamStreamError, function_call_block, system_blocks
from lynkr.wire.blocks import MESSAGE_BLOCK_TYPES, Fate, block_text, check_convertible
from lynkr.wire.emitter import EventWriter
from lynkr.wire.ids import generated_id, to_anthropic_id
from lynkr.wire.types import ContentBlock, Message, MessagesRequest, StreamEvent, Usage

__all__ = ["StreamConverter", "UpstreamStreamError", "build_request", "convert_response"]

STOP_REASONS = {"stop": "end_turn", "length": "max_tokens"}


def build_request(
    request: MessagesRequest, *, model: str, max_tokens: int, stream: bool, think: bool = False
) -> dict[str, Any]:
    """The ``/api/chat`` body.  ``think`` asks a thinking-capable model to think; Ollama refuses it for other
    models, so it comes from the model map, never from the client's ``thinking`` field.

    Raises ``InvalidRequest`` for a block type Ollama cannot take (``wire/blocks.py``).  ``output_config.format``
    (structured output) becomes ``format``, which takes the JSON schema itself.  No tool-call ids go upstream:
    Ollama pairs results with calls by ``tool_name``, so a provider's ``tool_id_scheme`` changes nothing here.
    """
    check_convertible(request)
    tool_names = {
        block["id"]: block["name"]
        for message in request["messages"]
        if message["role"] == "assistant" and not isinstance(message["content"], str)
        for block in message["content"]
        if block["type"] == "tool_use"
    }
    messages: list[dict[str, Any]] = []
    system = "\n\n".join(block["text"] for block in system_blocks(request))
    if system:
        messages.append({"role": "system", "content": system})
    for message in request["messages"]:
        if message["role"] == "assistant":
            _assistant_message(messages, message["content"])
        elif message["role"] == "user":
            _user_messages(messages, message["content"], tool_names)
    options: dict[str, Any] = {"num_predict": max_tokens}
    for key in ("temperature", "top_p", "top_k"):
        if request.get(key) is not None:
            options[key] = request[key]
    if request.get("stop_sequences"):
        options["stop"] = request["stop_sequences"]
    body: dict[str, Any] = {"model": model, "messages": messages, "stream": stream, "options": options}
    choice = request.get("tool_choice")
    # Ollama cannot force a tool; "none" is honoured by offering none.
    if request.get("tools") and not (choice is not None and choice["type"] == "none"):
        tools = [
            {
                "type": "function",
                "function": {
                    "name": tool["name"],
                    "description": tool.get("description", ""),
                    "parameters": tool["input_schema"],
                },
            }
            for tool in request.get("tools") or ()
            if isinstance(tool.get("input_schema"), dict)
        ]
        if tools:
            body["tools"] = tools
    output_format = (request.get("output_config") or {}).get("format")
    if output_format is not None:
        body["format"] = output_format["schema"]
    if think:
        body["think"] = True
    return body


def _assistant_message(messages: list[dict[str, Any]], content: str | list[ContentBlock]) -> None:
    if isinstance(content, str):
        if content:
            messages.append({"role": "assistant", "content": content})
        return
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for block in content:
        if block["type"] == "text":
            texts.append(block["text"])
        elif block["type"] == "tool_use":
            calls.append({"function": {"name": block["name"], "arguments": block["input"]}})
        elif MESSAGE_BLOCK_TYPES[block["type"]] is Fate.AS_TEXT:
            text = block_text(cast(Mapping[str, Any], block))
            if text:
                texts.append(f"\n{text}\n")  # the texts of a turn are joined with nothing between them
        # thinking is dropped, as for OpenAI-style upstreams: another model's reasoning, unverifiable.
    if not texts and not calls:
        return
    assistant: dict[str, Any] = {"role": "assistant", "content": "".join(texts)}
    if calls:
        assistant["tool_calls"] = calls
    messages.append(assistant)


def _user_messages(
    messages: list[dict[str, Any]], content: str | list[ContentBlock], tool_names: Mapping[str, str]
) -> None:
    if isinstance(content, str):
        messages.append({"role": "user", "content": content})
        return
    texts: list[str] = []
    images: list[str] = []
    for block in content:
        if block["type"] == "text":
            if block["text"]:
                texts.append(block["text"])
        elif block["type"] == "image":
            _image(block["source"], texts, images)
        elif block["type"] == "tool_result":
            text, result_images = _tool_result_content(block.get("content"))
            if block.get("is_error"):
                text = f"Error: {text}"
            if result_images:
                images.extend(result_images)
                text = f"{text}\n(the result's {len(result_images)} image(s) follow in the next user message)".lstrip()
            messages.append(
                {"role": "tool", "content": text, "tool_name": tool_names.get(block["tool_use_id"], "")}
            )
        elif MESSAGE_BLOCK_TYPES[block["type"]] is Fate.AS_TEXT:
            text = block_text(cast(Mapping[str, Any], block))
            if text:
                texts.append(text)
    if texts or images:
        user: dict[str, Any] = {"role": "user", "content": "\n\n".join(texts)}
        if images:
            user["images"] = images
        messages.append(user)


def _image(source: Mapping[str, Any], texts: list[str], images: list[str]) -> None:
    if source.get("type") == "base64":
        images.append(source["data"])
    else:
        # Ollama takes only inline image bytes, and lynkr's wire layer does no I/O to fetch a URL.
        texts.append(f"[an image from a {source.get('type')!r} source was left out: this provider cannot take it]")


def _tool_result_content(content: object) -> tuple[str, list[str]]:
    if content is None:
        return "", []
    if isinstance(content, str):
        return content, []
    texts: list[str] = []
    images: list[str] = []
    for block in cast(list[Mapping[str, Any]], content):
        kind = block.get("type")
        if kind == "text":
            texts.append(block["text"])
        elif kind == "image":
            _image(block["source"], texts, images)
        else:  # check_convertible let through only the types of TOOL_RESULT_BLOCK_TYPES: the rest go as text
            text = block_text(block)
            if text:
                texts.append(text)
    return "\n".join(texts), images


# -- stream -----------------------------------------------------------------------------------------------


class StreamConverter:
    """Parsed ``/api/chat`` lines in, Anthropic events out."""

    def __init__(self, *, message_id: str, model: str, input_tokens: int = 0) -> None:
        self._writer = EventWriter(message_id=message_id, model=model, input_tokens=input_tokens)
        self._done_reason: str | None = None
        self._prompt_tokens: int | None = None
        self._output_tokens: int | None = None

    def feed(self, line: Mapping[str, Any]) -> list[StreamEvent]:
        writer = self._writer
        writer.start()
        if line.get("error"):
            raise UpstreamStreamError(str(line["error"]))
        message = line.get("message") or {}
        thinking = message.get("thinking")
        if thinking and isinstance(thinking, str):
            writer.thinking(thinking)
        content = message.get("content")
        if content and isinstance(content, str):
            writer.text(content)
        for call in message.get("tool_calls") or ():
            function = call.get("function") or {}
            arguments = function.get("arguments")
            upstream_id = call.get("id")
            writer.open_tool(
                to_anthropic_id(upstream_id) if upstream_id else generated_id(writer.message_id, writer.tool_uses),
                function.get("name") or "",
            )
            writer.tool_json(arguments if isinstance(arguments, str) else orjson.dumps(arguments or {}).decode())
            writer.close()
        if line.get("done"):
            self._done_reason = line.get("done_reason") or "stop"
            self._prompt_tokens = _count(line.get("prompt_eval_count"))
            self._output_tokens = _count(line.get("eval_count"))
            writer.close()
        return writer.take()

    def finish(self) -> list[StreamEvent]:
        writer = self._writer
        writer.start()
        writer.finish(
            stop_reason=_stop_reason(self._done_reason, tool_use=writer.tool_uses > 0),
            usage=_usage(
                # Ollama leaves prompt_eval_count out when the whole prompt came from its cache.
                self._prompt_tokens if self._prompt_tokens is not None else writer.input_tokens,
                self._output_tokens if self._output_tokens is not None else writer.estimated_output_tokens(),
            ),
        )
        return writer.take()


def _count(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _stop_reason(done_reason: str | None, *, tool_use: bool) -> str:
    stop_reason = STOP_REASONS.get(done_reason or "", "end_turn")
    return "tool_use" if tool_use and stop_reason == "end_turn" else stop_reason


def _usage(input_tokens: int, output_tokens: int) -> Usage:
    return {
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
    }


def convert_response(response: Mapping[str, Any], *, message_id: str, model: str) -> Message:
    """A non-streaming ``/api/chat`` answer (one object with ``done: true``) as an Anthropic message."""
    if response.get("error"):
        raise UpstreamStreamError(str(response["error"]))
    message = response.get("message") or {}
    content: list[ContentBlock] = []
    if message.get("thinking"):
        content.append({"type": "thinking", "thinking": message["thinking"], "signature": ""})
    if message.get("content"):
        content.append({"type": "text", "text": message["content"]})
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
        "stop_reason": _stop_reason(response.get("done_reason"), tool_use=tool_use),
        "stop_sequence": None,
        "usage": _usage(_count(response.get("prompt_eval_count")) or 0, _count(response.get("eval_count")) or 0),
    }
