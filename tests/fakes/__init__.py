"""Real peers for lynkr's tests: fake upstream LLM servers on loopback, and the real Claude Code CLI.

Fake upstreams
--------------
`FakeUpstream` is one ASGI app that speaks each provider's wire format by path (any path prefix):

    POST .../chat/completions, .../invocations   OpenAI chat completions (OpenAI, Azure deployments, Databricks,
                                                 OpenRouter, Ollama's OpenAI API): SSE `data:` chunks + `[DONE]`,
                                                 a usage chunk (`choices: []`) when stream_options.include_usage
    POST .../v1/messages                         Anthropic Messages: SSE with `event:` lines, or JSON
    POST .../v1/messages/count_tokens            {"input_tokens": N} (404 with FakeUpstream(count_tokens=False))
    POST .../api/chat                            Ollama native: NDJSON lines (streams unless "stream": false)
    GET  .../api/version, .../api/tags, .../v1/models, HEAD anything

Each model call takes the next scripted `Reply` (the default reply, text "ok", once the script is empty) and
renders it in the format of the endpoint it arrived at. `FakeUpstream(default_reply=, models=, count_tokens=,
tool_call_ids=)`; `tool_call_ids="[a-zA-Z0-9]{9}"` refuses (400, vLLM's Mistral wording, no reply taken) an
OpenAI-format request carrying any tool-call id that does not match it in full::

    fake = FakeUpstream()
    fake.push(
        Reply.tool_call(name="Bash", arguments={"command": "ls"}, id="call_1"),
        Reply.text("done"),
    )
    async with serve_fake(fake) as base_url:          # "http://127.0.0.1:PORT"
        ...                                           # point lynkr (or any client) at base_url
    call = fake.model_calls[1]                        # an Exchange
    call.request.json["messages"], call.request.header("authorization"), call.request.path

Replies (all frozen; `with_*` returns a changed copy):

    Reply.text("hi", reasoning="hmm", signature="sig")            reasoning/thinking, then text
    Reply.tool_call(name=, arguments={...} | "raw json", id=None, text="")
    Reply.tool_calls(ToolCall(name=, arguments=, id=), ..., text="")
    Reply.status(429, retry_after=1, message=None, body=None, headers=())   provider-shaped error body
    Reply.slow_first_byte(seconds, reply=None)        delay before the response head
    Reply.delay_between_chunks(seconds, reply=None)
    Reply.disconnect_after(n_chunks, reply=None)      drop the connection after n events: unterminated body
    Reply.mid_stream_error(message, after_chunks=1, reply=None)   in-band error event, then the stream ends
    .with_chunking(Chunking(text_fragments=, argument_fragments=, tool_calls_in_one_chunk=,
                            cumulative_arguments=, reasoning_field=, prompt_filter_first=,
                            comment_lines=(": OPENROUTER PROCESSING",), comment_between_chunks=))
    .with_faults(Faults(...)), .with_usage(Usage(input_tokens=, output_tokens=, cached_tokens=)),
    .with_stop("length")                              a finish/stop reason sent verbatim

A "chunk" is one SSE event or one NDJSON line; comment lines do not count. Chunking knobs apply where the format
has the notion: Anthropic splits text, thinking and `input_json_delta`; Ollama sends whole tool calls (one line
each, or all in one line) and has no SSE comments; the OpenAI-only knobs are marked so in `Chunking`.

Limits (`tests.fakes.limits`), enforced the way real services word their refusals; a call that breaks one gets
a 400 (recorded as its exchange's reply) and does not consume the script:

    FakeUpstream(limits=(OutputLimit(16384, wording="azure-openai"),      # openai, openrouter, databricks, anthropic
                         ContextWindow(8192, wording="vllm"),             # openai, openrouter, llama.cpp, ollama
                         KnownBetas({"claude-code-20250219"}, wording="bedrock")))   # or "anthropic"

What the fake saw: `fake.exchanges` (every request), `fake.model_calls` (those that took a reply),
`fake.requests`, `fake.refusals` (model calls answered with an error status), `fake.pending` (replies left),
`await fake.wait_for_model_calls(n)`. An `Exchange` has `request`
(`RecordedRequest`: method, path, query, headers, body, json, received_at, `header(name)`, `query_params`),
`wire_format`, `reply`, `outcome` ("completed" | "dropped" | "client_disconnected"), `client_disconnected_at`,
`finished_at` and the trio.Event `ended`. All times are `time.monotonic()`: to prove that a client disconnect
cancelled the upstream, note `time.monotonic()` when the client goes away, `await exchange.ended.wait()`, and
compare with `exchange.client_disconnected_at`.

Claude Code CLI (`tests.fakes.claude_cli`)
-----------------------------------------
    exe = ensure_claude(PINNED | "latest")            npm install into $LYNKR_TEST_CACHE/claude-code/<version>
                                                      (default ~/.cache/lynkr-tests/...), once, under a lock
    workdir = make_git_repo(tmp_path / "repo")        a throwaway repo with one commit
    result = await run_claude(exe, base_url=..., prompt=..., cwd=workdir,
                              extra_env={"ANTHROPIC_MODEL": "gpt-4o", "ANTHROPIC_API_KEY": None},  # None unsets
                              args=("--model", "sonnet"), timeout=90, api_key="sk-ant-lynkr-test")
    result.returncode, result.json, result.result, result.is_error, result.stdout, result.stderr, result.elapsed

The run gets a fresh HOME, stdin /dev/null, `-p PROMPT --output-format json --dangerously-skip-permissions`, and
a clean environment (PATH, LANG, TMPDIR only, then ANTHROPIC_BASE_URL, ANTHROPIC_API_KEY,
CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1, DISABLE_TELEMETRY=1, DISABLE_AUTOUPDATER=1, CLAUDE_CODE_MAX_RETRIES=2,
IS_SANDBOX=1). A run longer than `timeout` is killed (its whole process group) and raises ClaudeTimeout.

`tests.fakes.cli_fixtures` (load it with `pytest_plugins`) provides the session-scoped fixture `claude_exe`,
parametrized over PINNED ("2.1.197") and "latest" (skipped without npm, failed without it under CI), and
`claude_workdir` (a fresh git repository per test).
"""

from __future__ import annotations

from .limits import ContextWindow, KnownBetas, OutputLimit
from .script import Chunking, Faults, Reply, ToolCall, Usage
from .upstream import Exchange, FakeUpstream, RecordedRequest, serve_fake

__all__ = [
    "Chunking",
    "ContextWindow",
    "Exchange",
    "FakeUpstream",
    "Faults",
    "KnownBetas",
    "OutputLimit",
    "RecordedRequest",
    "Reply",
    "ToolCall",
    "Usage",
    "serve_fake",
]
