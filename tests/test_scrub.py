from __future__ import annotations

import copy
import json
import time
from typing import Any

import pytest

from lynkr.events.scrub import MASK, Scrubber, is_secret_key

SECRET = "sk-live-0123456789abcdef"


@pytest.mark.parametrize(
    "key",
    [
        "Authorization",
        "x-api-key",
        "X-Api-Key",
        "api-key",
        "api_key",
        "apiKey",
        "cookie",
        "Set-Cookie",
        "proxy-authorization",
        "access_token",
        "refreshToken",
        "client_secret",
        "password",
        "openai_key",
        "AWS_SECRET_ACCESS_KEY",
    ],
)
def test_credential_keys_are_recognised(key: str) -> None:
    assert is_secret_key(key)


@pytest.mark.parametrize("key", ["content-type", "model", "messages", "text", "keyboard", "monkey", "role"])
def test_ordinary_keys_are_not(key: str) -> None:
    assert not is_secret_key(key)


def test_header_values_under_credential_names_are_masked_case_insensitively() -> None:
    headers = {"Authorization": "Bearer abc", "X-API-KEY": "k", "content-type": "application/json"}
    assert Scrubber().scrub(headers) == {"Authorization": MASK, "X-API-KEY": MASK, "content-type": "application/json"}


def test_counts_under_token_named_keys_are_kept() -> None:
    body = {"max_tokens": 1024, "usage": {"input_tokens": 10, "cache_read_input_tokens": 0}, "thinking": None}
    assert Scrubber().scrub(body) == body


def test_strings_in_a_list_under_a_credential_key_are_masked() -> None:
    assert Scrubber().scrub({"set-cookie": ["a=1", "b=2"]}) == {"set-cookie": [MASK, MASK]}


def test_a_dict_under_a_credential_key_is_judged_by_its_own_keys() -> None:
    schema = {"api_key": {"type": "string", "description": "the key"}, "password": "hunter22"}
    assert Scrubber().scrub(schema) == {
        "api_key": {"type": "string", "description": "the key"},
        "password": MASK,
    }


def test_known_secret_is_masked_inside_any_string() -> None:
    body = {
        "messages": [{"role": "user", "content": [{"type": "text", "text": f"my key is {SECRET}, ok? {SECRET}"}]}],
        "metadata": (SECRET,),
    }
    scrubbed = Scrubber([SECRET]).scrub(body)
    assert scrubbed["messages"][0]["content"][0]["text"] == f"my key is {MASK}, ok? {MASK}"
    assert scrubbed["metadata"] == [MASK]


def test_short_strings_are_not_treated_as_secrets() -> None:
    assert Scrubber(["abc", ""]).scrub({"text": "abcabc"}) == {"text": "abcabc"}


def test_longer_secret_containing_a_shorter_one_is_masked_whole() -> None:
    scrubber = Scrubber(["secret-one", "secret-one-and-more"])
    assert scrubber.scrub_text("x secret-one-and-more y") == f"x {MASK} y"


def test_the_original_value_is_left_untouched() -> None:
    body = {"headers": {"x-api-key": SECRET}, "messages": [{"content": SECRET}]}
    before = copy.deepcopy(body)
    Scrubber([SECRET]).scrub(body)
    assert body == before


def test_without_known_secrets_strings_are_not_searched_or_copied() -> None:
    text = "x" * 1000
    scrubbed = Scrubber().scrub({"messages": [{"content": text}]})
    assert scrubbed["messages"][0]["content"] is text


def test_a_value_with_nothing_to_mask_comes_back_as_the_same_object() -> None:
    body = {"messages": [{"role": "user", "content": ["text", b"bytes"]}], "tools": ("Read",), "max_tokens": 5}
    assert Scrubber([SECRET]).scrub(body) is body
    assert Scrubber().scrub(body) is body


def test_only_the_containers_on_the_way_to_a_secret_are_copied() -> None:
    untouched = {"role": "assistant", "content": "fine"}
    body: dict[str, Any] = {"messages": [untouched, {"role": "user", "content": SECRET}], "headers": {"x-api-key": "k"}}
    scrubbed = Scrubber([SECRET]).scrub(body)
    assert scrubbed["messages"][0] is untouched
    assert scrubbed["messages"][1] == {"role": "user", "content": MASK}
    assert scrubbed["headers"] == {"x-api-key": MASK}
    assert body["messages"][1]["content"] == SECRET and body["headers"] == {"x-api-key": "k"}


def test_known_secrets_are_masked_inside_bytes() -> None:
    body = {"body": b'{"key": "' + SECRET.encode() + b'"}'}
    assert Scrubber([SECRET]).scrub(body) == {"body": b'{"key": "***"}'}


def test_scalars_of_other_types_pass_through() -> None:
    value: Any = {"n": 1, "f": 1.5, "b": True, "none": None, "token": 7}
    assert Scrubber([SECRET]).scrub(value) == value


def big_request_body() -> dict[str, Any]:
    """About 60 kB of JSON shaped like a Claude Code request."""
    messages = []
    for n in range(120):
        messages.append({"role": "user", "content": [{"type": "text", "text": f"turn {n} " + "lorem ipsum " * 20}]})
        messages.append(
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": "ok " * 30},
                    {"type": "tool_use", "id": f"toolu_{n}", "name": "Read", "input": {"file_path": f"/src/{n}.py"}},
                ],
            }
        )
    body = {"model": "claude-sonnet-4-5", "max_tokens": 8192, "system": "You are Claude Code." * 20, "messages": messages}
    assert 50_000 < len(json.dumps(body)) < 90_000
    return body


def test_a_60kb_body_scrubs_in_about_a_millisecond() -> None:
    body = big_request_body()
    scrubber = Scrubber([SECRET, "another-secret-value"])
    started = time.perf_counter()
    for _ in range(20):
        scrubbed = scrubber.scrub(body)
    per_body_s = (time.perf_counter() - started) / 20
    assert scrubbed == body
    assert per_body_s < 0.01  # measured ~0.6 ms; the bound leaves room for slow CI machines
