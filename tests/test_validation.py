"""Bad input gets the real API's answer: a 400 invalid_request_error naming the field, from lynkr itself.

Parser-level cases run ``parse_messages_request`` and the converters directly; daemon-level cases go through a
real daemon to a fake upstream and count what reached it: a request lynkr refuses never costs an upstream call.
A hypothesis-generated corpus of malformed requests checks that none of them gets a 2xx or a 5xx.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lynkr.errors import InvalidRequest
from lynkr.wire import ollama, openai
from lynkr.wire.anthropic import IMAGE_MEDIA_TYPES, parse_messages_request
from lynkr.wire.blocks import MESSAGE_BLOCK_TYPES, TOOL_RESULT_BLOCK_TYPES, Fate
from tests.conftest import make_config, running_lynkr
from tests.fakes import FakeUpstream, serve_fake
from tests.wire_samples import cli_request

TEST_TIMEOUT_S = 20
UNKNOWN_BLOCK = {"type": "nope"}
SVG_IMAGE = {"type": "image", "source": {"type": "base64", "media_type": "image/svg+xml", "data": "PHN2Zz4="}}
BAD_TOOL = {"name": "bad name!", "description": "d", "input_schema": {"type": "object"}}


def _request(content: Any = "hi", **extra: Any) -> dict[str, Any]:
    return {"model": "claude-sonnet-4-5", "max_tokens": 64, "messages": [{"role": "user", "content": content}], **extra}


def _refused(body: dict[str, Any]) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as caught:
        parse_messages_request(body)
    return caught.value


def _refused_by_converters(body: dict[str, Any]) -> list[InvalidRequest]:
    request = parse_messages_request(body)  # the edge keeps a block of a type it does not know
    errors = []
    for build in (
        lambda: openai.build_request(request, model="m", max_tokens=10, stream=True),
        lambda: ollama.build_request(request, model="m", max_tokens=10, stream=True),
    ):
        with pytest.raises(InvalidRequest) as caught:
            build()
        errors.append(caught.value)
    return errors


# -- block types --------------------------------------------------------------------------------------------


def _with_tool_round_trip(result_content: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "model": "m",
        "max_tokens": 10,
        "messages": [
            {"role": "user", "content": "go"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "Bash", "input": {}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": result_content}]},
        ],
    }


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (_request([{"type": "text", "text": "a"}, UNKNOWN_BLOCK]), "messages.0.content.1.type"),
        (_with_tool_round_trip([{"type": "text", "text": "ok"}, UNKNOWN_BLOCK]), "messages.2.content.0.content.1.type"),
        (_request(system=[{"type": "text", "text": "s"}, UNKNOWN_BLOCK]), "system.1.type"),
        ({**_request(), "messages": [{"role": "system", "content": [UNKNOWN_BLOCK]}, {"role": "user", "content": "x"}]},
         "messages.0.content.0.type"),
        # A block that exists, but not in this place: a tool_reference outside a tool_result.
        (_request([{"type": "tool_reference", "tool_name": "Bash"}]), "messages.0.content.0.type"),
    ],
)
def test_an_unknown_block_type_is_refused_by_every_converter_naming_its_path(body: dict[str, Any], field: str) -> None:
    for error in _refused_by_converters(body):
        assert (error.status, error.error_type, error.field) == (400, "invalid_request_error", field)
        assert error.message.startswith(f"{field}: Input tag ")
        assert "'text'" in error.message  # it lists what would have been accepted


SERVER_BLOCKS: list[dict[str, Any]] = [
    {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {"query": "lynkr docs"}},
    {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": [
        {"type": "web_search_result", "title": "Lynkr manual", "url": "https://lynkr.invalid/manual",
         "encrypted_content": "SECRET-CIPHERTEXT"}]},
    {"type": "server_tool_use", "id": "srvtoolu_2", "name": "web_fetch", "input": {"url": "https://x.invalid"}},
    {"type": "web_fetch_tool_result", "tool_use_id": "srvtoolu_2", "content": {
        "type": "web_fetch_result", "url": "https://x.invalid",
        "content": {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "fetched page"}}}},
    {"type": "server_tool_use", "id": "srvtoolu_3", "name": "code_execution", "input": {"code": "print(6*7)"}},
    {"type": "code_execution_tool_result", "tool_use_id": "srvtoolu_3", "content": {
        "type": "code_execution_result", "stdout": "42\n", "stderr": "", "return_code": 0, "content": []}},
    {"type": "bash_code_execution_tool_result", "tool_use_id": "srvtoolu_4", "content": {
        "type": "bash_code_execution_result", "stdout": "bash says hi", "stderr": "", "return_code": 0, "content": []}},
    {"type": "text_editor_code_execution_tool_result", "tool_use_id": "srvtoolu_5", "content": {
        "type": "text_editor_code_execution_view_result", "file_type": "text", "content": "file body"}},
    {"type": "tool_search_tool_result", "tool_use_id": "srvtoolu_6", "content": {
        "type": "tool_search_tool_search_result", "tool_references": [{"type": "tool_reference", "tool_name": "Grep"}]}},
    {"type": "mcp_tool_use", "id": "mcptoolu_1", "name": "lookup", "server_name": "wiki", "input": {"q": "x"}},
    {"type": "mcp_tool_result", "tool_use_id": "mcptoolu_1", "content": [{"type": "text", "text": "wiki answer"}]},
    {"type": "redacted_thinking", "data": "ENCRYPTED-THOUGHTS"},
    {"type": "compaction", "content": "summary of earlier turns"},
    {"type": "text", "text": "Here is what I found."},
]


def test_every_known_block_type_is_in_the_table_with_a_fate() -> None:
    for kind in ("server_tool_use", "web_search_tool_result", "web_fetch_tool_result", "code_execution_tool_result",
                 "bash_code_execution_tool_result", "text_editor_code_execution_tool_result", "mcp_tool_use",
                 "mcp_tool_result", "container_upload", "redacted_thinking", "document", "search_result"):
        assert kind in MESSAGE_BLOCK_TYPES, kind
    assert TOOL_RESULT_BLOCK_TYPES["tool_reference"] is Fate.AS_TEXT
    assert MESSAGE_BLOCK_TYPES["redacted_thinking"] is Fate.DROPPED


def test_server_tool_blocks_reach_other_upstreams_as_text_without_their_ciphertext() -> None:
    body = {"model": "m", "max_tokens": 10, "messages": [
        {"role": "user", "content": [{"type": "text", "text": "search"}, {"type": "container_upload", "file_id": "file_9"}]},
        {"role": "assistant", "content": SERVER_BLOCKS},
        {"role": "user", "content": "thanks"},
    ]}
    request = parse_messages_request(body)
    openai_messages = openai.build_request(request, model="m", max_tokens=10, stream=True)["messages"]
    ollama_messages = ollama.build_request(request, model="m", max_tokens=10, stream=True)["messages"]
    for messages in (openai_messages, ollama_messages):
        assert "file_9" in messages[0]["content"]
        assistant = messages[1]["content"]
        for visible in ("lynkr docs", "Lynkr manual", "https://lynkr.invalid/manual", "fetched page", "42", "bash says hi",
                        "file body", "Grep", "wiki", "wiki answer", "summary of earlier turns", "Here is what I found."):
            assert visible in assistant, visible
        assert "SECRET-CIPHERTEXT" not in assistant and "ENCRYPTED-THOUGHTS" not in assistant


def test_documents_and_search_results_in_a_tool_result_reach_ollama_as_text() -> None:
    body = _with_tool_round_trip([
        {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "doc body"}},
        {"type": "search_result", "source": "https://s.invalid", "title": "Hit", "content": [{"type": "text", "text": "snippet"}]},
        {"type": "tool_reference", "tool_name": "Grep"},
    ])
    request = parse_messages_request(body)
    tool_message = ollama.build_request(request, model="m", max_tokens=10, stream=True)["messages"][2]
    assert tool_message["role"] == "tool"
    for visible in ("doc body", "Hit", "snippet", "Tool Grep is now available."):
        assert visible in tool_message["content"]


def test_the_edge_keeps_an_unknown_block_for_an_anthropic_native_upstream() -> None:
    body = _request([UNKNOWN_BLOCK])
    assert parse_messages_request(body)["messages"][0]["content"] == [UNKNOWN_BLOCK]


# -- images ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("media_type", ["image/svg+xml", "image/bmp", "image/heic", "text/plain", "IMAGE/PNG"])
def test_base64_images_of_other_media_types_are_refused(media_type: str) -> None:
    image = {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": "AAAA"}}
    error = _refused(_request([image]))
    assert (error.status, error.error_type) == (400, "invalid_request_error")
    assert error.field == "messages.0.content.0.source.media_type"
    for allowed in IMAGE_MEDIA_TYPES:
        assert allowed in error.message


def test_an_svg_inside_a_tool_result_is_refused_naming_its_path() -> None:
    error = _refused(_with_tool_round_trip([SVG_IMAGE]))
    assert error.field == "messages.2.content.0.content.0.source.media_type"


@pytest.mark.parametrize(
    "source",
    [
        *({"type": "base64", "media_type": media_type, "data": "AAAA"} for media_type in IMAGE_MEDIA_TYPES),
        {"type": "url", "url": "https://example.invalid/cat.svg"},
        {"type": "file", "file_id": "file_011"},
    ],
)
def test_accepted_image_sources(source: dict[str, Any]) -> None:
    parse_messages_request(_request([{"type": "image", "source": source}]))


def test_an_unknown_image_source_type_is_refused() -> None:
    error = _refused(_request([{"type": "image", "source": {"type": "ftp", "url": "ftp://x"}}]))
    assert error.field == "messages.0.content.0.source.type"


# -- tools ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["bad name!", "", "a.b", "x" * 129, "naïve", "mcp__server__tool:1"])
def test_client_tool_names_must_match_the_api_pattern(name: str) -> None:
    error = _refused(_request(tools=[{**BAD_TOOL, "name": name}]))
    assert (error.status, error.error_type, error.field) == (400, "invalid_request_error", "tools.0.name")
    assert "^[a-zA-Z0-9_-]{1,128}$" in error.message


@pytest.mark.parametrize("name", ["Bash", "mcp__github__create_issue", "x" * 128, "tool-2_b"])
def test_good_tool_names_pass(name: str) -> None:
    parse_messages_request(_request(tools=[{**BAD_TOOL, "name": name}]))


@pytest.mark.parametrize(
    ("schema", "words"),
    [({}, "Field required"), ({"type": "array"}, "'object'"), ({"type": ["object"]}, "'object'")],
)
def test_input_schema_must_be_an_object_schema(schema: dict[str, Any], words: str) -> None:
    error = _refused(_request(tools=[{"name": "Ok", "input_schema": schema}]))
    assert error.field == "tools.0.input_schema.type"
    assert words in error.message


def test_server_tools_are_valid_entries_without_schema_or_free_name() -> None:
    tools = [
        {"type": "web_search_20250305", "name": "web_search", "max_uses": 5},
        {"type": "text_editor_20250728", "name": "str_replace_based_edit_tool"},
        {"type": "custom", "name": "Mine", "input_schema": {"type": "object"}},
    ]
    parse_messages_request(_request(tools=tools))
    error = _refused(_request(tools=[{**tools[2], "name": "not mine"}]))
    assert error.field == "tools.0.name"


# -- structured output ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("output_format", "field"),
    [
        ("json", "output_config.format"),
        ({"schema": {"type": "object"}}, "output_config.format.type"),
        ({"type": "xml", "schema": {}}, "output_config.format.type"),
        ({"type": "json_schema"}, "output_config.format.schema"),
        ({"type": "json_schema", "schema": "{}"}, "output_config.format.schema"),
    ],
)
def test_a_malformed_output_format_names_its_field(output_format: Any, field: str) -> None:
    assert _refused(_request(output_config={"format": output_format})).field == field


# -- through the daemon ----------------------------------------------------------------------------------------


def _openai_env(upstream: str) -> dict[str, str]:
    return {"MODEL_PROVIDER": "openai", "OPENAI_ENDPOINT": f"{upstream}/v1/chat/completions",
            "OPENAI_API_KEY": "sk-upstream-validation", "OPENAI_MODEL": "gpt-test"}


def _ollama_env(upstream: str) -> dict[str, str]:
    return {"MODEL_PROVIDER": "ollama", "OLLAMA_ENDPOINT": upstream, "OLLAMA_MODEL": "qwen3-coder"}


def _anthropic_env(upstream: str) -> dict[str, str]:
    return {"MODEL_PROVIDER": "azure-anthropic", "AZURE_ANTHROPIC_ENDPOINT": f"{upstream}/anthropic/v1/messages",
            "AZURE_ANTHROPIC_API_KEY": "azure-upstream-validation"}


@asynccontextmanager
async def _daemon(
    tmp_path: Path, env: Callable[[str], dict[str, str]]
) -> AsyncIterator[tuple[httpx.AsyncClient, FakeUpstream]]:
    fake = FakeUpstream()
    with trio.fail_after(TEST_TIMEOUT_S):
        async with serve_fake(fake) as upstream, running_lynkr(make_config(tmp_path, env(upstream))) as lynkr:
            async with httpx.AsyncClient(base_url=lynkr.base_url, timeout=5) as client:
                yield client, fake


def _error(response: httpx.Response) -> tuple[int, str, str]:
    body = response.json()
    assert body["type"] == "error"
    assert body["request_id"] == response.headers["request-id"]
    return response.status_code, body["error"]["type"], body["error"]["message"]


THE_THREE_THAT_SLIPPED_THROUGH = [
    pytest.param(_request([UNKNOWN_BLOCK]), "messages.0.content.0.type", id="unknown-block-type"),
    pytest.param(_request([SVG_IMAGE]), "messages.0.content.0.source.media_type", id="svg-image"),
    pytest.param(_request(tools=[BAD_TOOL]), "tools.0.name", id="bad-tool-name"),
]


@pytest.mark.parametrize(("body", "field"), THE_THREE_THAT_SLIPPED_THROUGH)
@pytest.mark.parametrize("stream", [False, True])
async def test_the_three_requests_that_slipped_through_are_refused_without_an_upstream_call(
    tmp_path: Path, body: dict[str, Any], field: str, stream: bool
) -> None:
    async with _daemon(tmp_path, _openai_env) as (client, fake):
        response = await client.post("/v1/messages", json={**body, "stream": stream})
        good = await client.post("/v1/messages", json=_request())
    status, error_type, message = _error(response)
    assert (status, error_type) == (400, "invalid_request_error")
    assert message.startswith(f"{field}: ")
    assert good.status_code == 200  # the same daemon and upstream serve a good request
    assert len(fake.model_calls) == 1


EVERY_RULE_THROUGH_THE_DAEMON = [
    (_with_tool_round_trip([UNKNOWN_BLOCK]), "messages.2.content.0.content.0.type"),
    (_request(system=[UNKNOWN_BLOCK]), "system.0.type"),
    (_with_tool_round_trip([SVG_IMAGE]), "messages.2.content.0.content.0.source.media_type"),
    (_request([{"type": "image", "source": {"type": "ftp", "url": "ftp://x"}}]), "messages.0.content.0.source.type"),
    (_request(tools=[{**BAD_TOOL, "name": "x" * 129}]), "tools.0.name"),
    (_request(tools=[{"name": "Ok", "input_schema": {"type": "array"}}]), "tools.0.input_schema.type"),
    (_request(tools=[{"name": "Ok", "input_schema": {"properties": {}}}]), "tools.0.input_schema.type"),
    (_request(output_config={"format": {"type": "json_schema"}}), "output_config.format.schema"),
]


async def test_every_rule_is_answered_by_lynkr_with_the_field_path(tmp_path: Path) -> None:
    async with _daemon(tmp_path, _openai_env) as (client, fake):
        answers = [await client.post("/v1/messages", json=body) for body, _ in EVERY_RULE_THROUGH_THE_DAEMON]
        counted = await client.post("/v1/messages/count_tokens", json={**_request(tools=[BAD_TOOL])})
    for (_, field), response in zip(EVERY_RULE_THROUGH_THE_DAEMON, answers, strict=True):
        status, error_type, message = _error(response)
        assert (status, error_type) == (400, "invalid_request_error"), field
        assert message.startswith(f"{field}: "), (field, message)
    assert _error(counted)[:2] == (400, "invalid_request_error")
    assert _error(counted)[2].startswith("tools.0.name: ")
    assert fake.model_calls == []


async def test_an_unknown_block_type_toward_ollama_costs_no_upstream_call(tmp_path: Path) -> None:
    async with _daemon(tmp_path, _ollama_env) as (client, fake):
        response = await client.post("/v1/messages", json=_with_tool_round_trip([{"type": "text", "text": "x"},
                                                                                UNKNOWN_BLOCK]))
    status, error_type, message = _error(response)
    assert (status, error_type) == (400, "invalid_request_error")
    assert message.startswith("messages.2.content.0.content.1.type: ")
    assert fake.model_calls == []


async def test_an_anthropic_native_upstream_decides_about_an_unknown_block_type(tmp_path: Path) -> None:
    async with _daemon(tmp_path, _anthropic_env) as (client, fake):
        response = await client.post("/v1/messages", json=_request([{"type": "text", "text": "a"}, UNKNOWN_BLOCK]))
    assert response.status_code == 200, response.text
    [call] = fake.model_calls
    assert call.request.json["messages"][0]["content"][1] == UNKNOWN_BLOCK


# -- a generated corpus of malformed requests ------------------------------------------------------------------

_KNOWN_TYPES = set(MESSAGE_BLOCK_TYPES) | set(TOOL_RESULT_BLOCK_TYPES)
_TOOL_NAME = re.compile(r"[a-zA-Z0-9_-]{1,128}")
_not_a_string = st.one_of(st.integers(), st.floats(allow_nan=False), st.booleans(), st.lists(st.integers(), max_size=2),
                          st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))
_not_an_object = st.one_of(st.integers(), st.text(max_size=5), st.booleans(), st.lists(st.integers(), max_size=2))
_not_a_list = st.one_of(st.integers(), st.booleans(), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))
Mutation = Callable[[dict[str, Any]], None]


def _blocks(request: dict[str, Any]) -> list[tuple[int, int]]:
    """(message, block) positions of every block in a user or assistant message with list content."""
    return [
        (index, position)
        for index, message in enumerate(request["messages"])
        if message["role"] != "system" and isinstance(message["content"], list)
        for position in range(len(message["content"]))
    ]


def _custom_tools(request: dict[str, Any]) -> list[int]:
    return [index for index, tool in enumerate(request["tools"]) if "input_schema" in tool]


@st.composite
def _mutation(draw: st.DrawFn, request: dict[str, Any]) -> Mutation:
    """One change that makes a valid request invalid for the real API (and for lynkr)."""
    blocks, tools = _blocks(request), _custom_tools(request)
    kind = draw(st.sampled_from([
        "unknown_block", "bad_media_type", "bad_tool_name", "schema_not_object", "field_not_a_string",
        "missing_field", "bad_max_tokens", "container_not_a_list", "block_not_an_object", "truncated",
    ]))
    if kind == "unknown_block":
        where = draw(st.sampled_from(blocks))
        tag = draw(st.text(st.characters(codec="ascii"), min_size=1, max_size=12).filter(lambda t: t not in _KNOWN_TYPES))
        extra = draw(st.dictionaries(st.sampled_from(["text", "data", "id"]), st.text(max_size=5), max_size=2))

        def mutate(body: dict[str, Any]) -> None:
            body["messages"][where[0]]["content"][where[1]] = {**extra, "type": tag}
    elif kind == "bad_media_type":
        media_type = draw(st.text(max_size=20).filter(lambda t: t not in IMAGE_MEDIA_TYPES))
        in_result = draw(st.booleans())

        def mutate(body: dict[str, Any]) -> None:
            image = {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": "AAAA"}}
            last = body["messages"][-1]["content"]
            if in_result:
                last[1]["content"] = [image]  # the transcript's last turn answers two tool calls
            else:
                last.append(image)
    elif kind == "bad_tool_name":
        index = draw(st.sampled_from(tools))
        name = draw(st.text(max_size=140).filter(lambda t: not _TOOL_NAME.fullmatch(t)))

        def mutate(body: dict[str, Any]) -> None:
            body["tools"][index]["name"] = name
    elif kind == "schema_not_object":
        index = draw(st.sampled_from(tools))
        schema_type = draw(st.one_of(st.none(), st.sampled_from(["array", "string", "Object", ""]), _not_a_string))

        def mutate(body: dict[str, Any]) -> None:
            schema = body["tools"][index]["input_schema"]
            if schema_type is None:
                del schema["type"]
            else:
                schema["type"] = schema_type
    elif kind == "field_not_a_string":
        path = draw(st.sampled_from([("model",), ("messages", 0, "role"), ("messages", 0, "content", 1, "text"),
                                     ("messages", 2, "content", 2, "id"), ("messages", 2, "content", 2, "name"),
                                     ("messages", 3, "content", 0, "tool_use_id"), ("tools", 0, "name")]))
        value = draw(_not_a_string)

        def mutate(body: dict[str, Any]) -> None:
            _set(body, path, value)
    elif kind == "missing_field":
        path = draw(st.sampled_from([("model",), ("max_tokens",), ("messages",), ("messages", 0, "content"),
                                     ("messages", 0, "role"), ("messages", 2, "content", 2, "input"),
                                     ("messages", 3, "content", 0, "tool_use_id"), ("tools", 1, "input_schema"),
                                     ("messages", 5, "content", 1, "content", 0, "source", "media_type")]))

        def mutate(body: dict[str, Any]) -> None:
            parent = body
            for key in path[:-1]:
                parent = parent[key]
            del parent[path[-1]]
    elif kind == "bad_max_tokens":
        value = draw(st.one_of(st.integers(max_value=0), st.booleans(), st.text(max_size=4), st.floats(allow_nan=False)))

        def mutate(body: dict[str, Any]) -> None:
            body["max_tokens"] = value
    elif kind == "container_not_a_list":
        path = draw(st.sampled_from([("messages",), ("tools",), ("messages", 0, "content"), ("stop_sequences",)]))
        value = draw(_not_a_list)

        def mutate(body: dict[str, Any]) -> None:
            _set(body, path, value)
    elif kind == "block_not_an_object":
        where = draw(st.sampled_from(blocks))
        value = draw(_not_an_object)

        def mutate(body: dict[str, Any]) -> None:
            body["messages"][where[0]]["content"][where[1]] = value
    else:
        cut = draw(st.floats(min_value=0.0, max_value=0.999))

        def mutate(body: dict[str, Any]) -> None:
            body["__truncate_at__"] = cut
    return mutate


def _set(body: dict[str, Any], path: tuple[str | int, ...], value: Any) -> None:
    parent: Any = body
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = value


def _encoded(body: dict[str, Any]) -> bytes:
    cut = body.pop("__truncate_at__", None)
    data = json.dumps(body).encode()
    return data if cut is None else data[: int(len(data) * cut)]


def _malformed_corpus(size: int) -> list[bytes]:
    base = cli_request()
    base["stream"] = False
    parse_messages_request(copy.deepcopy(base))  # the starting point is valid
    corpus: list[bytes] = []

    @settings(max_examples=size, database=None, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.lists(_mutation(base), min_size=1, max_size=3))
    def collect(mutations: list[Mutation]) -> None:
        body = copy.deepcopy(base)
        mutations[0](body)  # the first always applies: every path it names exists in the base request
        for mutate in mutations[1:]:
            try:
                mutate(body)
            except (KeyError, IndexError, TypeError):
                pass  # an earlier change took away the place this one would change; the body stays invalid
        corpus.append(_encoded(body))

    collect()
    return corpus


async def test_a_generated_corpus_of_malformed_requests_gets_no_2xx_and_no_5xx(tmp_path: Path) -> None:
    corpus = _malformed_corpus(80)
    assert len(corpus) >= 40
    async with _daemon(tmp_path, _openai_env) as (client, fake):
        answers = [
            await client.post("/v1/messages", content=body, headers={"content-type": "application/json"})
            for body in corpus
        ]
    for body, response in zip(corpus, answers, strict=True):
        assert 400 <= response.status_code < 500, (response.status_code, response.text, body[:2000])
        status, error_type, _ = _error(response)
        assert error_type == "invalid_request_error", (status, response.text)
    assert fake.model_calls == []
