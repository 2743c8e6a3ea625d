"""What an upstream's refusal says about its limits, read from the wording each server uses.

Sans-IO: bytes of an error body in, one fact out (or None when the refusal is about something else).
Three facts matter to the provider pool, each handled differently:

- :class:`OutputCeiling`: the upstream takes at most N output tokens.  Asking again with N succeeds.
- :class:`ContextOverflow`: input plus requested output exceed the context window.  When the upstream names
  both its window and the input, and the input fits, asking again for fewer output tokens succeeds; when the
  input alone does not fit, no retry on that upstream can help.
- :class:`RejectedBetas`: an Anthropic-native upstream does not know an ``anthropic-beta`` flag.  Asking
  again without it succeeds.

Each wording below is quoted (numbers aside) from the server that sends it, so a test can feed the real
sentence.  Servers change their wording between releases, which is why the patterns anchor on the phrases
that carry the numbers and ignore the rest.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import attrs
import orjson

# A refusal that carries the whole story fits in a few kilobytes; an HTML error page does not need scanning.
_SCAN_LIMIT = 16 << 10

_N = r"(\d[\d,]*)"  # a token count; some servers group digits with commas


@attrs.frozen(kw_only=True)
class OutputCeiling:
    """The upstream produces at most ``limit`` output tokens per request."""

    limit: int


@attrs.frozen(kw_only=True)
class ContextOverflow:
    """Input and requested output do not fit the upstream's context window.

    ``window`` and ``input_tokens`` are set when the message names them (``input_tokens`` is the upstream's own
    count, better than lynkr's estimate).
    """

    window: int | None
    input_tokens: int | None

    def output_room(self) -> int | None:
        """Output tokens that still fit beside the input, when the message says enough to know; else None."""
        if self.window is None or self.input_tokens is None or self.input_tokens >= self.window:
            return None
        return self.window - self.input_tokens


@attrs.frozen(kw_only=True)
class RejectedBetas:
    """The upstream refused ``anthropic-beta`` flags: the ones named, or an unnamed few when ``flags`` is empty."""

    flags: tuple[str, ...]


Rejection = OutputCeiling | ContextOverflow | RejectedBetas

# -- output ceilings ---------------------------------------------------------------------------------------------
# OpenAI and Azure OpenAI: "max_tokens is too large: 40000. This model supports at most 16384 completion tokens,
# whereas you provided 40000." (the same for max_completion_tokens).
_OPENAI_AT_MOST = re.compile(r"supports at most " + _N + r" completion tokens", re.I)
# Databricks model serving: "max_tokens (10000) cannot exceed 8192. Please reduce the length of max output
# tokens generated."
_DATABRICKS_CANNOT_EXCEED = re.compile(r"max_tokens \(" + _N + r"\) cannot exceed " + _N, re.I)
# Anthropic Messages (Anthropic, Azure AI Foundry, Databricks' native path): "max_tokens: 128000 > 64000, which
# is the maximum allowed number of output tokens for claude-sonnet-4-20250514"
_ANTHROPIC_MAX_OUTPUT = re.compile(
    r"max_tokens: " + _N + r" > " + _N + r", which is the maximum allowed number of output tokens", re.I
)
# Groq and other OpenAI-compatible hosts: "`max_tokens` must be less than or equal to `32768`, the maximum value
# for `max_tokens` is less than the `context_window` for this model"
_MUST_BE_AT_MOST = re.compile(
    r"`?max_(?:completion_)?tokens`? must be (?:less than or equal to|at most|<=) `?" + _N, re.I
)
# Gemini's OpenAI-compatible endpoint on Vertex: "Unable to submit request because it has a maxOutputTokens value
# of 100000 but the supported range is from 1 (inclusive) to 65537 (exclusive)."
_GEMINI_RANGE = re.compile(
    r"maxOutputTokens value of " + _N + r" but the supported range is from \d+ \(inclusive\) to " + _N
    + r" \(exclusive\)",
    re.I,
)

# -- context windows ---------------------------------------------------------------------------------------------
# vLLM (0.6 to 0.10): "'max_tokens' or 'max_completion_tokens' is too large: 64000. This model's maximum context
# length is 64001 tokens and your request has 24235 input tokens (64000 > 64001 - 24235)."
_VLLM_REQUEST_HAS = re.compile(
    r"maximum context length is " + _N + r" tokens and your request has " + _N + r" input tokens", re.I
)
# vLLM (0.11 on): "This model's maximum context length is 128000 tokens. However, you requested 65535 output
# tokens and your prompt contains at least 62466 input tokens, for a total of at least 128001 tokens."
_VLLM_PROMPT_CONTAINS = re.compile(
    r"maximum context length is " + _N + r" tokens\. However, you requested " + _N
    + r" output tokens and your prompt contains at least " + _N + r" input tokens",
    re.I,
)
# OpenAI (older models) and older vLLM: "This model's maximum context length is 8192 tokens. However, you
# requested 8256 tokens (64 in the messages, 8192 in the completion). Please reduce the length of the messages
# or completion."
_IN_THE_MESSAGES = re.compile(
    r"maximum context length is " + _N + r" tokens\. However, you requested " + _N + r" tokens \(" + _N
    + r" in the messages, " + _N + r" in the completion\)",
    re.I,
)
# OpenAI and Azure OpenAI: "This model's maximum context length is 128000 tokens. However, your messages resulted
# in 204308 tokens. Please reduce the length of the messages."
_MESSAGES_RESULTED = re.compile(
    r"maximum context length is " + _N + r" tokens\. However, your messages resulted in " + _N + r" tokens", re.I
)
# OpenRouter: "This endpoint's maximum context length is 131072 tokens. However, you requested about 138956 tokens
# (7884 of text input, 131072 in the output). Please reduce the length of either one, or use the "middle-out"
# transform to compress your prompt automatically."  Tool and image input are listed when present.
_OPENROUTER_ABOUT = re.compile(
    r"maximum context length is " + _N + r" tokens\. However, you requested about " + _N + r" tokens \(([^)]*)\)",
    re.I,
)
_OPENROUTER_INPUT_PART = re.compile(_N + r" of [a-z ]*input", re.I)
# llama.cpp server: "request (4390 tokens) exceeds the available context size (4096 tokens), try increasing it";
# older builds: "the request exceeds the available context size. try increasing the context size or enable
# context shift" with the numbers in `n_prompt_tokens` and `n_ctx`, or "Context size has been exceeded."
_LLAMA_CPP_REQUEST = re.compile(
    r"request \(" + _N + r" tokens\) exceeds the available context size \(" + _N + r" tokens\)", re.I
)
_LLAMA_CPP_UNNAMED = re.compile(r"exceeds the available context size|context size has been exceeded", re.I)
# Text Generation Inference (Hugging Face, Together): "Input validation error: `inputs` tokens + `max_new_tokens`
# must be <= 8193. Given: 6870 `inputs` tokens and 2000 `max_new_tokens`"
_TGI_GIVEN = re.compile(r"`max_new_tokens` must be <= " + _N + r"\. Given: " + _N + r" `inputs` tokens", re.I)
# Anthropic Messages: "prompt is too long: 210000 tokens > 200000 maximum", and "input length and `max_tokens`
# exceed context limit: 180000 + 64000 > 200000, decrease input length or `max_tokens` and try again"
_ANTHROPIC_PROMPT_TOO_LONG = re.compile(r"prompt is too long: " + _N + r" tokens > " + _N + r" maximum", re.I)
_ANTHROPIC_CONTEXT_LIMIT = re.compile(
    r"exceed context limit: " + _N + r" \+ " + _N + r" > " + _N, re.I
)
# Mistral: "Prompt contains 66385 tokens, too large for model with 32768 maximum context length"
_MISTRAL_PROMPT_CONTAINS = re.compile(
    r"Prompt contains " + _N + r" tokens, too large for model with " + _N + r" maximum context length", re.I
)
# Gemini: "The input token count (2845475) exceeds the maximum number of tokens allowed (1048576)."
_GEMINI_INPUT = re.compile(
    r"input token count \(" + _N + r"\) exceeds the maximum number of tokens allowed \(" + _N + r"\)", re.I
)
# Ollama: "the input length exceeds the context length" (no numbers).
_OLLAMA_INPUT_LENGTH = re.compile(r"input length exceeds the (?:maximum )?context length", re.I)
# Anything else that states the window: "maximum context length is 32768 tokens".
_ANY_WINDOW = re.compile(r"maximum context length is " + _N + r" tokens", re.I)

# -- beta flags --------------------------------------------------------------------------------------------------
# Anthropic (and Vertex AI): "Unexpected value(s) `prompt-caching-scope-2026-01-05`, `structured-outputs-2025-12-15`
# for the `anthropic-beta` header. Please consult our documentation at docs.anthropic.com or try again without the
# header."
_UNEXPECTED_BETAS = re.compile(r"Unexpected value\(s\) (.*?) for the `?anthropic-beta`? header", re.I | re.S)
_BACKTICKED = re.compile(r"`([^`]+)`")
# Amazon Bedrock and Azure AI Foundry: "invalid beta flag", without naming it.
_INVALID_BETA = re.compile(r"invalid beta flag", re.I)

_CONTEXT_CODES = frozenset({"context_length_exceeded", "exceed_context_size_error"})


def read_rejection(status: int, body: bytes) -> Rejection | None:
    """The limit an upstream's error answer names, or None when it is about something else."""
    if status not in (400, 413, 422, 500):
        return None
    texts, fields = _texts_and_fields(body[:_SCAN_LIMIT])
    text = "\n".join(texts)
    betas = _rejected_betas(text)
    if betas is not None:
        return betas
    ceiling = _output_ceiling(text)
    if ceiling is not None:
        return OutputCeiling(limit=ceiling)
    return _context_overflow(text, fields)


def _rejected_betas(text: str) -> RejectedBetas | None:
    named = _UNEXPECTED_BETAS.search(text)
    if named is not None:
        return RejectedBetas(flags=tuple(flag.strip() for flag in _BACKTICKED.findall(named.group(1))))
    if _INVALID_BETA.search(text):
        return RejectedBetas(flags=())
    return None


def _output_ceiling(text: str) -> int | None:
    if match := _OPENAI_AT_MOST.search(text):
        return _int(match.group(1))
    if match := _DATABRICKS_CANNOT_EXCEED.search(text):
        return _int(match.group(2))
    if match := _ANTHROPIC_MAX_OUTPUT.search(text):
        return _int(match.group(2))
    if match := _GEMINI_RANGE.search(text):
        return _int(match.group(2)) - 1
    if match := _MUST_BE_AT_MOST.search(text):
        return _int(match.group(1))
    return None


def _context_overflow(text: str, fields: dict[str, Any]) -> ContextOverflow | None:
    if match := _VLLM_REQUEST_HAS.search(text):
        return ContextOverflow(window=_int(match.group(1)), input_tokens=_int(match.group(2)))
    if match := _VLLM_PROMPT_CONTAINS.search(text):
        return ContextOverflow(window=_int(match.group(1)), input_tokens=_int(match.group(3)))
    if match := _IN_THE_MESSAGES.search(text):
        return ContextOverflow(window=_int(match.group(1)), input_tokens=_int(match.group(3)))
    if match := _MESSAGES_RESULTED.search(text):
        return ContextOverflow(window=_int(match.group(1)), input_tokens=_int(match.group(2)))
    if match := _OPENROUTER_ABOUT.search(text):
        parts = [_int(part) for part in _OPENROUTER_INPUT_PART.findall(match.group(3))]
        return ContextOverflow(window=_int(match.group(1)), input_tokens=sum(parts) if parts else None)
    if match := _LLAMA_CPP_REQUEST.search(text):
        return ContextOverflow(window=_int(match.group(2)), input_tokens=_int(match.group(1)))
    if match := _TGI_GIVEN.search(text):
        return ContextOverflow(window=_int(match.group(1)), input_tokens=_int(match.group(2)))
    if match := _ANTHROPIC_PROMPT_TOO_LONG.search(text):
        return ContextOverflow(window=_int(match.group(2)), input_tokens=_int(match.group(1)))
    if match := _ANTHROPIC_CONTEXT_LIMIT.search(text):
        return ContextOverflow(window=_int(match.group(3)), input_tokens=_int(match.group(1)))
    if match := _MISTRAL_PROMPT_CONTAINS.search(text):
        return ContextOverflow(window=_int(match.group(2)), input_tokens=_int(match.group(1)))
    if match := _GEMINI_INPUT.search(text):
        return ContextOverflow(window=_int(match.group(2)), input_tokens=_int(match.group(1)))
    if _LLAMA_CPP_UNNAMED.search(text) or _OLLAMA_INPUT_LENGTH.search(text) or fields.get("code") in _CONTEXT_CODES:
        return ContextOverflow(window=_int_field(fields, "n_ctx"), input_tokens=_int_field(fields, "n_prompt_tokens"))
    if match := _ANY_WINDOW.search(text):
        return ContextOverflow(window=_int(match.group(1)), input_tokens=None)
    return None


def _texts_and_fields(body: bytes) -> tuple[list[str], dict[str, Any]]:
    """Every string in a JSON error body (messages hide in ``error.message``, ``message``, ``detail``, ``error``
    and, on some gateways, ``param``), and the scalar fields of its ``error`` object; raw text when not JSON."""
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return [body.decode("utf-8", "replace")], {}
    fields: dict[str, Any] = {}
    if isinstance(parsed, dict):
        inner = parsed.get("error")
        if isinstance(inner, dict):
            fields = {key: value for key, value in inner.items() if not isinstance(value, dict | list)}
    return list(_strings(parsed)), fields


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _int(digits: str) -> int:
    return int(digits.replace(",", ""))


def _int_field(fields: dict[str, Any], key: str) -> int | None:
    value = fields.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None
