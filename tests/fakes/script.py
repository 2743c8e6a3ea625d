"""What a fake upstream answers: scripted replies, as plain data.

A `Reply` says what the model "said" (reasoning, text, tool calls), how the stream is cut into chunks and which
faults to inject.  It is independent of the wire format: the same reply is rendered as OpenAI chat chunks,
Anthropic SSE events or Ollama NDJSON lines, depending on the endpoint the request arrived at.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs


@attrs.frozen(kw_only=True)
class ToolCall:
    """One tool call.  `arguments` given as a string is sent verbatim (to fake truncated or malformed JSON)."""

    name: str
    arguments: Mapping[str, Any] | str = attrs.field(factory=dict)
    id: str | None = None


@attrs.frozen(kw_only=True)
class Usage:
    input_tokens: int = 12
    output_tokens: int = 5
    cached_tokens: int = 0


@attrs.frozen(kw_only=True)
class Chunking:
    """How a streamed reply is cut into chunks.

    text_fragments: pieces of the text (and of the reasoning); None gives one piece per word.
    argument_fragments: pieces of each tool call's JSON arguments.
    tool_calls_in_one_chunk: OpenAI/Ollama: every tool call, complete, inside a single chunk.
    cumulative_arguments: OpenAI: each argument chunk repeats everything sent so far (a snapshot).
    reasoning_field: OpenAI delta key for reasoning ("reasoning_content" or "reasoning").
    prompt_filter_first: OpenAI: Azure's first chunk with `choices: []` and `prompt_filter_results`.
    comment_lines: SSE comment lines (": OPENROUTER PROCESSING") sent before the first event.
    comment_between_chunks: an SSE comment line sent between every two events.
    """

    text_fragments: int | None = None
    argument_fragments: int = 3
    tool_calls_in_one_chunk: bool = False
    cumulative_arguments: bool = False
    reasoning_field: str = "reasoning_content"
    prompt_filter_first: bool = False
    comment_lines: tuple[str, ...] = ()
    comment_between_chunks: str | None = None


@attrs.frozen(kw_only=True)
class Faults:
    """Faults injected while the reply is delivered.

    first_byte_delay: seconds before the response head is sent.
    chunk_delay: seconds between two events of a stream.
    disconnect_after: drop the connection after this many events (comments do not count), leaving the HTTP body
        unterminated; for a non-streamed reply, after half of the JSON body.
    mid_stream_error: an in-band error event (provider style) after `mid_stream_error_after` events, then the
        stream ends.
    """

    first_byte_delay: float = 0.0
    chunk_delay: float = 0.0
    disconnect_after: int | None = None
    mid_stream_error: str | None = None
    mid_stream_error_after: int = 1


@attrs.frozen(kw_only=True)
class Reply:
    """One scripted answer to one model call.  Build it with the class methods, refine it with `with_*`."""

    content: str = ""
    reasoning: str | None = None
    reasoning_signature: str | None = None
    calls: tuple[ToolCall, ...] = ()
    stop_reason: str | None = None
    usage: Usage = Usage()
    http_status: int = 200
    error_message: str | None = None
    error_body: Any = None
    extra_headers: tuple[tuple[str, str], ...] = ()
    chunking: Chunking = Chunking()
    faults: Faults = Faults()

    # -- constructors -------------------------------------------------------------------------------------------

    @classmethod
    def text(cls, text: str, *, reasoning: str | None = None, signature: str | None = None) -> Reply:
        """A final text answer, optionally preceded by reasoning (thinking, with an Anthropic signature)."""
        return cls(content=text, reasoning=reasoning, reasoning_signature=signature)

    @classmethod
    def tool_call(
        cls, *, name: str, arguments: Mapping[str, Any] | str, id: str | None = None, text: str = ""
    ) -> Reply:
        return cls.tool_calls(ToolCall(name=name, arguments=arguments, id=id), text=text)

    @classmethod
    def tool_calls(cls, *calls: ToolCall, text: str = "") -> Reply:
        """Several tool calls in one answer, optionally after some text."""
        if not calls:
            raise ValueError("tool_calls needs at least one ToolCall")
        return cls(content=text, calls=calls)

    @classmethod
    def status(
        cls,
        code: int,
        *,
        retry_after: float | None = None,
        message: str | None = None,
        body: Any = None,
        headers: tuple[tuple[str, str], ...] = (),
    ) -> Reply:
        """An HTTP error answer.  `body` (dict or bytes) replaces the provider-shaped error body."""
        if code < 400:
            raise ValueError(f"status replies are errors, got {code}")
        extra = headers
        if retry_after is not None:
            extra = (("retry-after", _seconds_text(retry_after)), *extra)
        return cls(http_status=code, error_message=message, error_body=body, extra_headers=extra)

    @classmethod
    def slow_first_byte(cls, seconds: float, reply: Reply | None = None) -> Reply:
        base = DEFAULT_REPLY if reply is None else reply
        return attrs.evolve(base, faults=attrs.evolve(base.faults, first_byte_delay=seconds))

    @classmethod
    def delay_between_chunks(cls, seconds: float, reply: Reply | None = None) -> Reply:
        base = DEFAULT_REPLY if reply is None else reply
        return attrs.evolve(base, faults=attrs.evolve(base.faults, chunk_delay=seconds))

    @classmethod
    def disconnect_after(cls, n_chunks: int, reply: Reply | None = None) -> Reply:
        base = DEFAULT_REPLY if reply is None else reply
        return attrs.evolve(base, faults=attrs.evolve(base.faults, disconnect_after=n_chunks))

    @classmethod
    def mid_stream_error(cls, message: str, *, after_chunks: int = 1, reply: Reply | None = None) -> Reply:
        base = DEFAULT_REPLY if reply is None else reply
        faults = attrs.evolve(base.faults, mid_stream_error=message, mid_stream_error_after=after_chunks)
        return attrs.evolve(base, faults=faults)

    # -- refinements --------------------------------------------------------------------------------------------

    def with_chunking(self, chunking: Chunking) -> Reply:
        return attrs.evolve(self, chunking=chunking)

    def with_faults(self, faults: Faults) -> Reply:
        return attrs.evolve(self, faults=faults)

    def with_usage(self, usage: Usage) -> Reply:
        return attrs.evolve(self, usage=usage)

    def with_stop(self, stop_reason: str) -> Reply:
        """Send this finish/stop reason verbatim instead of the one derived from the content."""
        return attrs.evolve(self, stop_reason=stop_reason)


def _seconds_text(seconds: float) -> str:
    return str(int(seconds)) if float(seconds).is_integer() else str(seconds)


DEFAULT_REPLY = Reply(content="ok")
