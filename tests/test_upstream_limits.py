"""Reading limits out of upstreams' refusals, over the real wordings of each server (numbers aside)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from lynkr.upstream.limits import ContextOverflow, OutputCeiling, RejectedBetas, read_rejection


def _openai_error(message: str, **extra: Any) -> bytes:
    return json.dumps({"error": {"message": message, "type": "invalid_request_error", **extra}}).encode()


OUTPUT_CEILINGS = {
    "openai max_tokens": (
        _openai_error(
            "max_tokens is too large: 40000. This model supports at most 16384 completion tokens, whereas you "
            "provided 40000.",
            param="max_tokens",
            code="invalid_value",
        ),
        16384,
    ),
    "openai max_completion_tokens": (
        _openai_error(
            "max_completion_tokens is too large: 128000. This model supports at most 100000 completion tokens, "
            "whereas you provided 128000.",
            param="max_completion_tokens",
        ),
        100000,
    ),
    "azure openai": (
        json.dumps(
            {
                "error": {
                    "message": "max_tokens is too large: 32000. This model supports at most 16384 completion "
                    "tokens, whereas you provided 32000.",
                    "type": "invalid_request_error",
                    "param": "max_tokens",
                    "code": None,
                }
            }
        ).encode(),
        16384,
    ),
    "gateway that hides it in param": (
        json.dumps(
            {
                "error": {
                    "message": "Param Incorrect",
                    "type": "upstream_error",
                    "param": "max_tokens is too large: 1048576. This model supports at most 131072 completion "
                    "tokens, whereas you provided 1048576.",
                    "code": "400",
                }
            }
        ).encode(),
        131072,
    ),
    "databricks": (
        json.dumps(
            {
                "error_code": "BAD_REQUEST",
                "message": "Bad request: rpc error: code = InvalidArgument desc = max_tokens (10000) cannot exceed "
                "8192. Please reduce the length of max output tokens generated.",
            }
        ).encode(),
        8192,
    ),
    "anthropic": (
        json.dumps(
            {
                "type": "error",
                "error": {
                    "type": "invalid_request_error",
                    "message": "max_tokens: 128000 > 64000, which is the maximum allowed number of output tokens "
                    "for claude-sonnet-4-20250514",
                },
            }
        ).encode(),
        64000,
    ),
    "groq": (
        _openai_error(
            "`max_tokens` must be less than or equal to `32768`, the maximum value for `max_tokens` is less than "
            "the `context_window` for this model"
        ),
        32768,
    ),
    "gemini on vertex": (
        json.dumps(
            [
                {
                    "error": {
                        "code": 400,
                        "message": "Unable to submit request because it has a maxOutputTokens value of 100000 but "
                        "the supported range is from 1 (inclusive) to 65537 (exclusive). Update the value and try "
                        "again.",
                        "status": "INVALID_ARGUMENT",
                    }
                }
            ]
        ).encode(),
        65536,
    ),
}


@pytest.mark.parametrize("name", list(OUTPUT_CEILINGS))
def test_output_ceiling_is_read_from_each_servers_wording(name: str) -> None:
    body, limit = OUTPUT_CEILINGS[name]
    assert read_rejection(400, body) == OutputCeiling(limit=limit)


CONTEXT_OVERFLOWS = {
    # vLLM 0.6-0.10: the input fits; the output asked for does not.
    "vllm request has": (
        _openai_error(
            "'max_tokens' or 'max_completion_tokens' is too large: 64000. This model's maximum context length is "
            "64001 tokens and your request has 24235 input tokens (64000 > 64001 - 24235). None",
            type="BadRequestError",
        ),
        ContextOverflow(window=64001, input_tokens=24235),
        64001 - 24235,
    ),
    "vllm prompt contains": (
        _openai_error(
            "This model's maximum context length is 128000 tokens. However, you requested 65535 output tokens and "
            "your prompt contains at least 62466 input tokens, for a total of at least 128001 tokens. Please "
            "reduce the length of the input prompt or the number of requested output tokens."
        ),
        ContextOverflow(window=128000, input_tokens=62466),
        128000 - 62466,
    ),
    "openai and old vllm, messages and completion": (
        json.dumps(
            {
                "object": "error",
                "message": "This model's maximum context length is 6048 tokens. However, you requested 6616 tokens "
                "(568 in the messages, 6048 in the completion). Please reduce the length of the messages or "
                "completion.",
                "type": "BadRequestError",
                "param": None,
                "code": 400,
            }
        ).encode(),
        ContextOverflow(window=6048, input_tokens=568),
        6048 - 568,
    ),
    "openai messages resulted": (
        _openai_error(
            "This model's maximum context length is 128000 tokens. However, your messages resulted in 204308 "
            "tokens. Please reduce the length of the messages.",
            param="messages",
            code="context_length_exceeded",
        ),
        ContextOverflow(window=128000, input_tokens=204308),
        None,
    ),
    "openrouter, output too large": (
        json.dumps(
            {
                "error": {
                    "message": "This endpoint's maximum context length is 131072 tokens. However, you requested "
                    "about 138956 tokens (7884 of text input, 131072 in the output). Please reduce the length of "
                    'either one, or use the "middle-out" transform to compress your prompt automatically.',
                    "code": 400,
                    "metadata": {"provider_name": None},
                }
            }
        ).encode(),
        ContextOverflow(window=131072, input_tokens=7884),
        131072 - 7884,
    ),
    "openrouter, tool input counted": (
        _openai_error(
            "This endpoint's maximum context length is 65536 tokens. However, you requested about 92208 tokens "
            "(60833 of text input, 10042 of tool input, 21333 in the output). Please reduce the length of either "
            'one, or use the "middle-out" transform to compress your prompt automatically.'
        ),
        ContextOverflow(window=65536, input_tokens=70875),
        None,
    ),
    "llama.cpp": (
        json.dumps(
            {
                "error": {
                    "code": 400,
                    "message": "request (4390 tokens) exceeds the available context size (4096 tokens), try "
                    "increasing it",
                    "type": "exceed_context_size_error",
                    "n_prompt_tokens": 4390,
                    "n_ctx": 4096,
                }
            }
        ).encode(),
        ContextOverflow(window=4096, input_tokens=4390),
        None,
    ),
    "llama.cpp, numbers in fields": (
        json.dumps(
            {
                "error": {
                    "code": 400,
                    "message": "the request exceeds the available context size. try increasing the context size "
                    "or enable context shift",
                    "type": "exceed_context_size_error",
                    "n_prompt_tokens": 14429,
                    "n_ctx": 8192,
                }
            }
        ).encode(),
        ContextOverflow(window=8192, input_tokens=14429),
        None,
    ),
    "ollama": (
        b'{"error":"the input length exceeds the context length"}',
        ContextOverflow(window=None, input_tokens=None),
        None,
    ),
    "text generation inference": (
        json.dumps(
            {
                "error": "Input validation error: `inputs` tokens + `max_new_tokens` must be <= 8193. Given: 6870 "
                "`inputs` tokens and 2000 `max_new_tokens`",
                "error_type": "validation",
            }
        ).encode(),
        ContextOverflow(window=8193, input_tokens=6870),
        8193 - 6870,
    ),
    "anthropic prompt too long": (
        json.dumps(
            {
                "type": "error",
                "error": {
                    "type": "invalid_request_error",
                    "message": "prompt is too long: 210000 tokens > 200000 maximum",
                },
            }
        ).encode(),
        ContextOverflow(window=200000, input_tokens=210000),
        None,
    ),
    "anthropic input plus max_tokens": (
        json.dumps(
            {
                "type": "error",
                "error": {
                    "type": "invalid_request_error",
                    "message": "input length and `max_tokens` exceed context limit: 180000 + 64000 > 200000, "
                    "decrease input length or `max_tokens` and try again",
                },
            }
        ).encode(),
        ContextOverflow(window=200000, input_tokens=180000),
        20000,
    ),
    "mistral": (
        json.dumps(
            {
                "object": "error",
                "message": "Prompt contains 66385 tokens, too large for model with 32768 maximum context length",
                "type": "invalid_request_error",
                "param": None,
                "code": None,
            }
        ).encode(),
        ContextOverflow(window=32768, input_tokens=66385),
        None,
    ),
    "gemini": (
        json.dumps(
            {
                "error": {
                    "code": 400,
                    "message": "The input token count (2845475) exceeds the maximum number of tokens allowed "
                    "(1048576).",
                    "status": "INVALID_ARGUMENT",
                }
            }
        ).encode(),
        ContextOverflow(window=1048576, input_tokens=2845475),
        None,
    ),
}


@pytest.mark.parametrize("name", list(CONTEXT_OVERFLOWS))
def test_context_overflow_is_read_with_the_room_left_for_output(name: str) -> None:
    body, expected, room = CONTEXT_OVERFLOWS[name]
    overflow = read_rejection(400, body)
    assert overflow == expected
    assert isinstance(overflow, ContextOverflow)
    assert overflow.output_room() == room


def test_old_llama_cpp_500_is_an_overflow_not_a_server_fault() -> None:
    body = b'{"error":{"code":500,"message":"Context size has been exceeded.","type":"server_error"}}'
    assert read_rejection(500, body) == ContextOverflow(window=None, input_tokens=None)


def test_anthropic_names_the_betas_it_does_not_know() -> None:
    body = json.dumps(
        {
            "type": "error",
            "error": {
                "type": "invalid_request_error",
                "message": "Unexpected value(s) `prompt-caching-scope-2026-01-05`, `structured-outputs-2025-12-15` "
                "for the `anthropic-beta` header. Please consult our documentation at docs.anthropic.com or try "
                "again without the header.",
            },
        }
    ).encode()
    assert read_rejection(400, body) == RejectedBetas(
        flags=("prompt-caching-scope-2026-01-05", "structured-outputs-2025-12-15")
    )


def test_bedrock_and_foundry_refuse_a_beta_without_naming_it() -> None:
    body = json.dumps(
        {"type": "error", "error": {"type": "invalid_request_error", "message": "invalid beta flag"}}
    ).encode()
    assert read_rejection(400, body) == RejectedBetas(flags=())


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (400, _openai_error("Invalid value for 'tool_choice': 'any'.")),
        (400, b"<html><body>Bad Request</body></html>"),
        (401, _openai_error("max_tokens is too large: 40000. This model supports at most 16384 completion tokens")),
        (429, _openai_error("Rate limit reached for requests")),
        (400, b""),
    ],
)
def test_other_refusals_name_no_limit(status: int, body: bytes) -> None:
    assert read_rejection(status, body) is None


def test_plain_text_refusals_are_read_too() -> None:
    body = b"max_tokens is too large: 9000. This model supports at most 4,096 completion tokens"
    assert read_rejection(400, body) == OutputCeiling(limit=4096)
