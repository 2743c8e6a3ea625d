"""Limits a fake upstream enforces the way real services do: refusals worded as each service words them.

    FakeUpstream(limits=(OutputLimit(16384, wording="azure-openai"),))
    FakeUpstream(limits=(ContextWindow(8192, wording="openai"),))
    FakeUpstream(limits=(KnownBetas({"claude-code-20250219"}, wording="bedrock"),))

A model call that breaks a limit gets the refusal (a `Reply.status(400, body=...)` recorded on its `Exchange`,
so `call.reply.http_status == 400`) and does not consume the script.  The fake estimates input tokens as a
quarter of the request body's bytes, a coarse stand-in for a tokenizer that is all a limit check needs.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Literal, Protocol

import attrs

from .script import Reply

if TYPE_CHECKING:
    from .upstream import RecordedRequest

OutputWording = Literal["openai", "azure-openai", "openrouter", "databricks", "anthropic"]
ContextWording = Literal["openai", "vllm", "openrouter", "llama.cpp", "ollama"]
BetaWording = Literal["anthropic", "bedrock"]


class Limit(Protocol):
    def refusal(self, request: RecordedRequest) -> Reply | None: ...


def requested_output(body: Any) -> int | None:
    """The output tokens a model call asks for, in any of the three wire formats."""
    if not isinstance(body, dict):
        return None
    for key in ("max_completion_tokens", "max_tokens"):
        if isinstance(body.get(key), int):
            return int(body[key])
    options = body.get("options")
    if isinstance(options, dict) and isinstance(options.get("num_predict"), int):
        return int(options["num_predict"])
    return None


def input_tokens(request: RecordedRequest) -> int:
    return max(1, len(request.body) // 4)


@attrs.frozen
class OutputLimit:
    """Refuse a call that asks for more than `max_tokens` output tokens."""

    max_tokens: int
    wording: OutputWording = "openai"

    def refusal(self, request: RecordedRequest) -> Reply | None:
        asked = requested_output(request.json)
        if asked is None or asked <= self.max_tokens:
            return None
        return Reply.status(400, body=self.body(asked, request.json))

    def body(self, asked: int, request: Any) -> Any:
        param = "max_completion_tokens" if "max_completion_tokens" in request else "max_tokens"
        openai = {
            "message": f"{param} is too large: {asked}. This model supports at most {self.max_tokens} completion "
            f"tokens, whereas you provided {asked}.",
            "type": "invalid_request_error",
            "param": param,
            "code": "invalid_value",
        }
        if self.wording == "openai":
            return {"error": openai}
        if self.wording == "azure-openai":
            return {"error": {**openai, "code": None}}
        if self.wording == "openrouter":
            # OpenRouter wraps the provider's own refusal, raw, in its metadata.
            raw = json.dumps({"error": openai})
            return {"error": {"message": "Provider returned error", "code": 400,
                              "metadata": {"raw": raw, "provider_name": "OpenAI"}}}
        if self.wording == "databricks":
            return {
                "error_code": "BAD_REQUEST",
                "message": f"Bad request: rpc error: code = InvalidArgument desc = max_tokens ({asked}) cannot exceed "
                f"{self.max_tokens}. Please reduce the length of max output tokens generated.",
            }
        return {
            "type": "error",
            "error": {
                "type": "invalid_request_error",
                "message": f"max_tokens: {asked} > {self.max_tokens}, which is the maximum allowed number of output "
                f"tokens for {request.get('model', 'the model')}",
            },
        }


@attrs.frozen
class ContextWindow:
    """Refuse a call whose input (or, for the wordings that count it, input plus requested output) exceeds `tokens`."""

    tokens: int
    wording: ContextWording = "openai"

    def refusal(self, request: RecordedRequest) -> Reply | None:
        used = input_tokens(request)
        asked = requested_output(request.json) or 0
        counts_output = self.wording in ("vllm", "openrouter")
        if used <= self.tokens and not (counts_output and used + asked > self.tokens):
            return None
        return Reply.status(400, body=self.body(used, asked))

    def body(self, used: int, asked: int) -> Any:
        if self.wording == "vllm":
            message = (
                f"'max_tokens' or 'max_completion_tokens' is too large: {asked}. This model's maximum context length "
                f"is {self.tokens} tokens and your request has {used} input tokens ({asked} > {self.tokens} - {used})."
            )
            return {"object": "error", "message": message, "type": "BadRequestError", "param": None, "code": 400}
        if self.wording == "openrouter":
            message = (
                f"This endpoint's maximum context length is {self.tokens} tokens. However, you requested about "
                f"{used + asked} tokens ({used} of text input, {asked} in the output). Please reduce the length of "
                'either one, or use the "middle-out" transform to compress your prompt automatically.'
            )
            return {"error": {"message": message, "code": 400, "metadata": {"provider_name": None}}}
        if self.wording == "llama.cpp":
            message = (
                f"request ({used} tokens) exceeds the available context size ({self.tokens} tokens), try increasing it"
            )
            return {"error": {"code": 400, "message": message, "type": "exceed_context_size_error",
                              "n_prompt_tokens": used, "n_ctx": self.tokens}}
        if self.wording == "ollama":
            return {"error": "the input length exceeds the context length"}
        message = (
            f"This model's maximum context length is {self.tokens} tokens. However, your messages resulted in {used} "
            "tokens. Please reduce the length of the messages."
        )
        return {"error": {"message": message, "type": "invalid_request_error", "param": "messages",
                          "code": "context_length_exceeded"}}


@attrs.frozen
class KnownBetas:
    """Refuse a call whose `anthropic-beta` header holds a flag not in `flags`."""

    flags: frozenset[str] = attrs.field(converter=frozenset)
    wording: BetaWording = "anthropic"

    def refusal(self, request: RecordedRequest) -> Reply | None:
        sent = [flag.strip() for flag in (request.header("anthropic-beta") or "").split(",") if flag.strip()]
        unknown = [flag for flag in sent if flag not in self.flags]
        if not unknown:
            return None
        if self.wording == "bedrock":
            message = "invalid beta flag"
        else:
            named = ", ".join(f"`{flag}`" for flag in unknown)
            message = (
                f"Unexpected value(s) {named} for the `anthropic-beta` header. Please consult our documentation at "
                "docs.anthropic.com or try again without the header."
            )
        return Reply.status(400, body={"type": "error", "error": {"type": "invalid_request_error", "message": message}})


def first_refusal(limits: Iterable[Limit], request: RecordedRequest) -> Reply | None:
    for limit in limits:
        refusal = limit.refusal(request)
        if refusal is not None:
            return refusal
    return None
