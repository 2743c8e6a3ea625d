"""Sans-IO protocol conversion.

Everything in this package takes dicts or bytes and returns dicts or bytes: no sockets, no trio, no httpx.
Anthropic stream events are plain dicts exactly as they appear in an SSE ``data:`` line
(``{"type": "content_block_delta", "index": 0, "delta": {...}}``), so a converter's output can be framed by
``sse.encode_event``, folded by ``anthropic.MessageAssembler`` and recorded in the event log unchanged.

- ``types``: TypedDicts for the JSON shapes on the wire.
- ``anthropic``: request validation, the stream assembler, message <-> events.
- ``emitter``: writes a well-formed Anthropic event sequence; the provider converters build on it.
- ``openai``: Anthropic <-> OpenAI chat completions (OpenAI, Azure OpenAI, Databricks, OpenRouter, vLLM, llama.cpp).
- ``ollama``: Anthropic <-> Ollama's native ``/api/chat``.
- ``sse``: SSE framing and an incremental SSE / NDJSON decoder.
- ``ids``: reversible mapping between upstream tool-call ids and Anthropic tool_use ids.
- ``tokens``: an offline input-token estimate.
"""
