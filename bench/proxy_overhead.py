"""Proxy overhead: what lynkr adds between a client and an upstream, against going direct and against LiteLLM.

    .venv/bin/python bench/proxy_overhead.py --results bench/RESULTS.md          # full run, ~5 minutes
    .venv/bin/python bench/proxy_overhead.py --quick                             # short run, ~1 minute
    .venv/bin/python bench/proxy_overhead.py passthrough-saving                  # the passthrough's own saving

Every party is its own process: the fake upstream (``bench/fake_upstream.py``), ``python -m lynkr`` twice
(``MODEL_PROVIDER=openai``, converting to chat completions, and ``MODEL_PROVIDER=anthropic``, passing through),
LiteLLM's proxy when it is installed in ``--litellm-venv`` (``/v1/messages`` converted to chat completions),
the sequential loop client (this file, ``_client`` mode) and ``wrk``.

What is measured, with repeats interleaved across targets and medians over repeats quoted:

* latency at concurrency 1: a sequential client on one persistent connection, ``perf_counter`` around each
  request, for a small body and for a ~60 kB Claude Code-shaped body (system blocks with cache_control, a
  role:"system" message, 20 tool schemas).  "Added" is the proxy's percentile minus the direct percentile,
  where "direct" sends the fake the very bytes lynkr sent it (captured from the fake), so the upstream's own
  work is the same on both paths;
* CPU per request: the proxy's utime+stime (its whole process tree) from /proc before and after a fixed
  number of sequential requests, and during the load runs;
* requests/s at concurrency 64 with ``wrk`` (one thread, 64 connections, small body);
* streaming: a 200-chunk burst (time to the first text delta and to the end, CPU per stream and per chunk),
  and a 200-chunk stream with 5 ms between chunks, where each chunk carries the fake's send time: a chunk that
  reaches the client only after the fake sent the next one was buffered;
* non-streaming clients with a 200-chunk answer, at a modest ``max_tokens`` (lynkr asks the upstream for one
  JSON body) and a long one (lynkr keeps the upstream streaming);
* RSS (VmRSS) once idle after start-up and after the load runs, and the peak (VmHWM).

* the floor: the same measurements through a relay made of lynkr's stack alone (trio, hypercorn, httpx;
  this file's ``_floor`` mode), so what lynkr itself adds can be told from what its stack costs.

Full runs end with one more lynkr under cProfile (with a thread CPU clock) for a fixed request mix, and list
where its trio thread spends CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import pstats
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, cast

REPO: Final = Path(__file__).resolve().parent.parent
FAKE_SCRIPT: Final = REPO / "bench" / "fake_upstream.py"
CLIENT_MODEL: Final = "claude-sonnet-4-5"
MASTER_KEY: Final = "sk-bench-master-0123456789"
UPSTREAM_KEY: Final = "sk-bench-upstream-0123456789"
CLK_TCK: Final = os.sysconf("SC_CLK_TCK")
MARKER: Final = re.compile(rb"k(\d{4})@(\d+)\|")
MARKER_OVERLAP: Final = 32  # longer than any marker, so one split across two reads is still found
CHUNKS: Final = 200
DELAY_MS: Final = 5
DEFAULT_LITELLM_VENV: Final = Path("/tmp/lynkr-bench-litellm-venv")
TARGETS_TEXT: Final = "p50 added <= 1 ms, p99 added <= 3 ms (c=1); >= 1,000 req/s (c=64); <= 0.8 ms CPU/request; " \
    "TTFT added <= 1 ms, no buffering; RSS <= 150 MB after load"


@dataclass(frozen=True)
class Plan:
    repeats: int
    small_n: int
    large_n: int
    peer_n: int  # sequential requests per repeat for LiteLLM, which is an order of magnitude slower
    warmup: int
    stream_n: int
    peer_stream_n: int
    whole_n: int  # non-streaming requests with a 200-chunk answer, per body kind
    delayed_n: int
    load_s: int
    load_warmup_s: int  # one unmeasured wrk run per target first: connection pools filled, code paths warm
    profile_n: int


FULL: Final = Plan(repeats=3, small_n=1200, large_n=800, peer_n=150, warmup=100, stream_n=60, peer_stream_n=20,
                   whole_n=100, delayed_n=3, load_s=6, load_warmup_s=2, profile_n=300)
QUICK: Final = Plan(repeats=1, small_n=300, large_n=200, peer_n=40, warmup=30, stream_n=15, peer_stream_n=5,
                    whole_n=30, delayed_n=1, load_s=2, load_warmup_s=1, profile_n=0)


# ---------------------------------------------------------------------------------------------------------------
# Request bodies.


def small_body(*, stream: bool, directive: str = "", max_tokens: int = 1024) -> dict[str, Any]:
    text = "Say hello in one word." + (f" {directive}" if directive else "")
    return {"model": CLIENT_MODEL, "max_tokens": max_tokens, "stream": stream,
            "messages": [{"role": "user", "content": text}]}


CLAUDE_CODE_TOOLS: Final = (
    "Task", "Bash", "Glob", "Grep", "LS", "ExitPlanMode", "Read", "Edit", "MultiEdit", "Write", "NotebookEdit",
    "WebFetch", "TodoWrite", "WebSearch", "BashOutput", "KillShell", "SlashCommand", "AskUserQuestion",
    "mcp__ide__getDiagnostics", "mcp__ide__executeCode",
)
PROSE: Final = (
    "Use this tool when the task needs it. Prefer the dedicated tools over shell commands for reading, "
    "searching and editing files. Always quote paths that contain spaces, keep the output short, and explain "
    "what a command does before running anything that changes the user's system. "
)


def _tool(name: str, index: int, description_bytes: int) -> dict[str, Any]:
    description = f"{name}: " + (PROSE * (description_bytes // len(PROSE) + 1))[:description_bytes]
    return {
        "name": name,
        "description": description,
        "input_schema": {
            "$schema": "http://json-schema.org/draft-07/schema#",
            "type": "object",
            "additionalProperties": False,
            "required": ["path", "mode"],
            "properties": {
                "path": {"type": "string", "description": "The absolute path to operate on."},
                "mode": {"type": "string", "enum": ["read", "write", "append"], "description": "How to open it."},
                "limit": {"type": "number", "description": "Most lines to return."},
                "options": {
                    "type": "object",
                    "properties": {f"flag_{k}": {"type": "boolean", "description": f"Option {k} of tool {index}."}
                                   for k in range(4)},
                },
            },
        },
    }


def large_body(*, stream: bool, directive: str = "", target_bytes: int = 60_000) -> dict[str, Any]:
    """A Claude Code turn: two cached system blocks, a role:"system" message, a tool round trip, 20 tools."""
    system = [
        {"type": "text", "text": "You are Claude Code, Anthropic's official CLI for Claude.",
         "cache_control": {"type": "ephemeral"}},
        {"type": "text", "text": (PROSE * 60)[:12_000], "cache_control": {"type": "ephemeral"}},
    ]
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": [
            {"type": "text", "text": "<system-reminder>\nAs you answer, use the context below.\n" + PROSE * 10
             + "</system-reminder>"},
            {"type": "text", "text": "Find where the retry budget is computed and explain it."},
        ]},
        {"role": "assistant", "content": [
            {"type": "text", "text": "I'll search for it."},
            {"type": "tool_use", "id": "toolu_01Bench", "name": "Grep",
             "input": {"pattern": "retry_budget", "path": "/src"}},
        ]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_01Bench",
             "content": "src/upstream/retry.py:12:def retry_budget(attempts: int) -> float:\n" * 40},
        ]},
        {"role": "system", "content": "The user's working folder is /src; keep answers short."},
        {"role": "user", "content": [
            {"type": "text", "text": "Thanks. Now summarise it." + (f" {directive}" if directive else ""),
             "cache_control": {"type": "ephemeral"}},
        ]},
    ]
    body: dict[str, Any] = {
        "model": CLIENT_MODEL, "max_tokens": 32000, "stream": stream, "temperature": 1,
        "metadata": {"user_id": "user_bench_account__session_0b8f2c6e-6f43-4d3a-9a1e-bench"},
        "system": system, "messages": messages, "tools": [],
    }
    base = len(json.dumps(body))
    per_tool = max(200, (target_bytes - base) // len(CLAUDE_CODE_TOOLS) - 900)
    body["tools"] = [_tool(name, index, per_tool) for index, name in enumerate(CLAUDE_CODE_TOOLS)]
    return body


def encode(body: dict[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()


# ---------------------------------------------------------------------------------------------------------------
# The loop client: one persistent HTTP/1.1 connection over a raw socket, run in its own process.


class Connection:
    """A minimal blocking HTTP/1.1 client: content-length and chunked responses, markers timed on arrival."""

    def __init__(self, host: str, port: int) -> None:
        self._sock = socket.create_connection((host, port))
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._buffer = bytearray()
        self.arrivals: dict[int, tuple[int, int]] = {}  # chunk -> (arrival ns, fake's send ns)
        self._tail = b""

    def _fill(self) -> None:
        data = self._sock.recv(1 << 18)
        now = time.monotonic_ns()
        if not data:
            raise ConnectionError("the server closed the connection")
        self._buffer += data
        window = self._tail + data
        for match in MARKER.finditer(window):
            index = int(match.group(1))
            if index not in self.arrivals:
                self.arrivals[index] = (now, int(match.group(2)))
        self._tail = window[-MARKER_OVERLAP:]

    def _line(self) -> bytes:
        while (end := self._buffer.find(b"\r\n")) < 0:
            self._fill()
        line = bytes(self._buffer[:end])
        del self._buffer[: end + 2]
        return line

    def _take(self, size: int) -> None:
        while len(self._buffer) < size:
            self._fill()
        del self._buffer[:size]

    def exchange(self, request: bytes) -> int:
        """Send one request, read the whole response; returns the status."""
        self.arrivals = {}
        self._tail = b""
        self._sock.sendall(request)
        status = int(self._line().split(b" ", 2)[1])
        length: int | None = None
        chunked = False
        while line := self._line():
            name, _, value = line.partition(b":")
            lowered = name.strip().lower()
            if lowered == b"content-length":
                length = int(value)
            elif lowered == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
        if chunked:
            while (size := int(self._line().split(b";")[0], 16)) > 0:
                self._take(size + 2)
            while self._line():
                pass  # trailers
        elif length is not None:
            self._take(length)
        else:
            raise ConnectionError("a response without content-length or chunked framing")
        return status

    def close(self) -> None:
        self._sock.close()


def raw_request(host: str, port: int, path: str, headers: Sequence[tuple[str, str]], body: bytes) -> bytes:
    lines = [f"POST {path} HTTP/1.1", f"host: {host}:{port}", "content-type: application/json",
             f"content-length: {len(body)}", *(f"{k}: {v}" for k, v in headers)]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def client_main(spec_path: str) -> int:
    """``_client`` mode: warm up, say ``ready``, wait for ``go``, run the measured requests, print JSON."""
    spec = json.loads(Path(spec_path).read_text())
    body = Path(spec["body_file"]).read_bytes()
    request = raw_request(spec["host"], spec["port"], spec["path"], [tuple(h) for h in spec["headers"]], body)
    expected_markers: int = spec["markers"]
    connection = Connection(spec["host"], spec["port"])
    errors: list[str] = []

    def one() -> tuple[float, float | None, dict[int, tuple[int, int]]]:
        started_ns = time.monotonic_ns()
        started = time.perf_counter()
        status = connection.exchange(request)
        elapsed = time.perf_counter() - started
        arrivals = connection.arrivals
        if status != 200 or len(arrivals) != expected_markers:
            errors.append(f"status {status}, {len(arrivals)} of {expected_markers} chunks")
        first = arrivals.get(0)
        ttft = (first[0] - started_ns) / 1e9 if first else None
        return elapsed, ttft, arrivals

    for _ in range(spec["warmup"]):
        one()
    del errors[:]
    print("ready", flush=True)
    if sys.stdin.readline().strip() != "go":
        return 1
    latencies: list[float] = []
    ttfts: list[float] = []
    chunk_detail: list[list[tuple[int, int, int]]] = []
    for _ in range(spec["n"]):
        elapsed, ttft, arrivals = one()
        latencies.append(elapsed)
        if ttft is not None:
            ttfts.append(ttft)
        if spec["chunk_detail"]:
            chunk_detail.append([(index, *arrivals[index]) for index in sorted(arrivals)])
    connection.close()
    print(json.dumps({"latency_s": latencies, "ttft_s": ttfts, "chunks": chunk_detail, "errors": errors[:5],
                      "error_count": len(errors)}), flush=True)
    return 0


# ---------------------------------------------------------------------------------------------------------------
# The stack's floor: hypercorn + httpx on trio relaying bytes, with none of lynkr's work, in its own process.


def floor_main(port: int, upstream_url: str) -> int:
    """``_floor`` mode: a relay that forwards each POST body to ``upstream_url`` and streams the reply back.

    It shows what the stack lynkr is built on (trio, hypercorn, httpx) costs by itself, so lynkr's own share of
    the overhead can be read off the difference.
    """
    import httpx
    import trio
    from hypercorn.config import Config as HypercornConfig
    from hypercorn.trio import serve

    async def relay(client: httpx.AsyncClient, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        if scope["method"] != "POST":
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
            await send({"type": "http.response.body", "body": b"ok"})
            return
        parts = []
        while True:
            message = await receive()
            parts.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        request = client.build_request("POST", upstream_url, content=b"".join(parts),
                                       headers={"content-type": "application/json"})
        response = await client.send(request, stream=True)
        try:
            content_type = response.headers.get("content-type", "application/json").encode()
            await send({"type": "http.response.start", "status": response.status_code,
                        "headers": [(b"content-type", content_type)]})
            async for chunk in response.aiter_raw():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        finally:
            await response.aclose()

    async def main() -> None:
        config = HypercornConfig()
        config.bind = [f"127.0.0.1:{port}"]
        config.accesslog = None
        config.keep_alive_max_requests = 1 << 40
        # The same pool settings as lynkr's.
        limits = httpx.Limits(max_connections=256, max_keepalive_connections=256, keepalive_expiry=30)
        async with httpx.AsyncClient(timeout=30, limits=limits) as client:
            async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
                await relay(client, scope, receive, send)

            await serve(cast(Any, app), config, shutdown_trigger=trio.sleep_forever)

    try:
        trio.run(main)
    except KeyboardInterrupt:
        pass
    return 0


# ---------------------------------------------------------------------------------------------------------------
# The passthrough's own saving, in process: the sans-IO work for one 200-chunk Anthropic stream when lynkr
# forwards the upstream's bytes, against parsing and re-encoding every event.


def passthrough_saving(streams: int = 200, repeats: int = 7) -> dict[str, float]:
    """Thread CPU ms per 200-chunk stream: parse and fold (for the log) plus either ``encode_events`` or nothing."""
    sys.path.insert(0, str(REPO))
    sys.path.insert(0, str(REPO / "bench"))
    import fake_upstream
    from lynkr.wire.anthropic import MessageAssembler
    from lynkr.wire.sse import encode_events
    from lynkr.wire.streams import AnthropicStream

    frames = list(fake_upstream.anthropic_stream(CHUNKS))

    def one_run(verbatim: bool) -> float:
        started = time.thread_time()
        for _ in range(streams):
            parser, assembler, out = AnthropicStream(), MessageAssembler(), []
            for frame in frames:
                events, raw = parser.feed_verbatim(frame)
                for event in events:
                    assembler.feed(event)
                out.append(raw if verbatim and raw is not None else encode_events(events))
            parser.close()
            assembler.message()
        return (time.thread_time() - started) * 1000 / streams

    runs: dict[str, list[float]] = {"re-encoded": [], "verbatim": []}
    for _ in range(repeats):  # interleaved, so a noisy neighbour hits both paths alike
        runs["re-encoded"].append(one_run(False))
        runs["verbatim"].append(one_run(True))
    return {label: statistics.median(values) for label, values in runs.items()}


def _passthrough_table(saving: dict[str, float]) -> list[str]:
    return ["", "### Anthropic passthrough: the upstream's bytes against re-encoding (in process)", "",
            f"Thread CPU per {CHUNKS}-chunk stream for the sans-IO part alone (`passthrough_saving()`: parse each "
            "read, fold the events for the log, then frame them again or forward the read's own bytes), median of "
            "7 interleaved runs of 200 streams.", "",
            "| path | ms per stream | ms per chunk |", "| --- | ---: | ---: |",
            *(f"| {label} | {ms:.3f} | {ms / CHUNKS:.4f} |" for label, ms in saving.items())]


# ---------------------------------------------------------------------------------------------------------------
# Processes: CPU and memory from /proc, start and stop.


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    found, stack = [], [root]
    while stack:
        pid = stack.pop()
        found.append(pid)
        stack.extend(children.get(pid, []))
    return found


def cpu_seconds(root: int) -> float:
    """utime+stime of a process tree (threads included), plus what its reaped children used."""
    ticks = 0
    for pid in _descendants(root):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # After the ")": state is field 3, utime 14, stime 15, cutime 16, cstime 17 (1-based, man 5 proc).
        ticks += int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])
    return ticks / CLK_TCK


def main_thread_cpu_seconds(pid: int) -> float:
    """utime+stime of the process's main thread alone (lynkr's trio thread)."""
    try:
        fields = Path(f"/proc/{pid}/task/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def memory_mb(root: int, key: str = "VmRSS") -> float:
    total_kb = 0
    for pid in _descendants(root):
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith(key + ":"):
                    total_kb += int(line.split()[1])
        except OSError:
            continue
    return total_kb / 1024


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_http_ok(url: str, process: subprocess.Popen[bytes], timeout_s: float, log: Path) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url} exited with {process.returncode}: {_tail(log)}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer 200 within {timeout_s:g} s: {_tail(log)}")


def _tail(log: Path, lines: int = 15) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@dataclass
class Service:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path
    idle_rss_mb: float = 0.0

    @property
    def pid(self) -> int:
        return self.process.pid


@contextmanager
def started(name: str, argv: list[str], *, env: dict[str, str], cwd: Path, port: int, health: str,
            log: Path, timeout_s: float = 60) -> Iterator[Service]:
    with open(log, "wb") as log_file:
        process = subprocess.Popen(argv, env=env, cwd=cwd, stdout=log_file, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    try:
        wait_http_ok(f"http://127.0.0.1:{port}{health}", process, timeout_s, log)
        yield Service(name=name, port=port, process=process, log=log)
    finally:
        _stop(process)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def base_env(home: Path) -> dict[str, str]:
    """A clean environment: nothing from the caller's shell configures a provider by accident."""
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "LANG": "C.UTF-8",
            "PYTHONDONTWRITEBYTECODE": "1"}


def lynkr_env(scratch: Path, name: str, port: int, provider: dict[str, str]) -> dict[str, str]:
    workspace = scratch / f"{name}-workspace"
    workspace.mkdir()
    return {**base_env(scratch), "PORT": str(port), "LYNKR_HOST": "127.0.0.1", "WORKSPACE_ROOT": str(workspace),
            "LYNKR_DATA_DIR": str(scratch / f"{name}-data"), "PROMPT_CACHE_ENABLED": "false",
            "LYNKR_SHUTDOWN_GRACE_S": "2", **provider}


def litellm_config(fake_port: int) -> str:
    return f"""model_list:
  - model_name: {CLIENT_MODEL}
    litellm_params:
      model: openai/gpt-bench
      api_base: http://127.0.0.1:{fake_port}/v1
      api_key: {UPSTREAM_KEY}
litellm_settings:
  use_chat_completions_url_for_anthropic_messages: true
  cache: false
  telemetry: false
  drop_params: true
  num_retries: 0
router_settings:
  disable_cooldowns: true
  num_retries: 0
general_settings:
  master_key: {MASTER_KEY}
  disable_spend_logs: true
"""


# ---------------------------------------------------------------------------------------------------------------
# Targets and measurements.


@dataclass(frozen=True)
class Target:
    name: str
    service: Service  # the process that answers, whose CPU and memory are read
    path: str
    headers: tuple[tuple[str, str], ...]
    bodies: dict[str, bytes]  # body kind -> request bytes
    baseline: str | None = None  # the direct target this one is compared with
    peer: bool = False

    @property
    def port(self) -> int:
        return self.service.port

    @property
    def pid(self) -> int:
        return self.service.pid


ANTHROPIC_HEADERS: Final = (("x-api-key", MASTER_KEY), ("authorization", f"Bearer {MASTER_KEY}"),
                            ("anthropic-version", "2023-06-01"))
OPENAI_HEADERS: Final = (("authorization", f"Bearer {UPSTREAM_KEY}"),)


@dataclass
class Samples:
    """Figures per repeat for one (target, workload)."""

    p50_ms: list[float] = field(default_factory=list)
    p99_ms: list[float] = field(default_factory=list)
    ttft_p50_ms: list[float] = field(default_factory=list)
    cpu_ms: list[float] = field(default_factory=list)
    main_thread_cpu_ms: list[float] = field(default_factory=list)
    errors: int = 0
    error_examples: list[str] = field(default_factory=list)
    chunks: list[list[tuple[int, int, int]]] = field(default_factory=list)


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def run_loop(scratch: Path, target: Target, kind: str, *, n: int, warmup: int, markers: int,
             chunk_detail: bool = False) -> dict[str, Any]:
    body_file = scratch / f"body-{target.name}-{kind}.json"
    body_file.write_bytes(target.bodies[kind])
    spec_file = scratch / "client-spec.json"
    spec_file.write_text(json.dumps({
        "host": "127.0.0.1", "port": target.port, "path": target.path, "headers": target.headers,
        "body_file": str(body_file), "n": n, "warmup": warmup, "markers": markers, "chunk_detail": chunk_detail,
    }))
    client = subprocess.Popen([sys.executable, __file__, "_client", str(spec_file)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    assert client.stdin is not None and client.stdout is not None
    if client.stdout.readline().strip() != "ready":
        client.wait()
        raise RuntimeError(f"the loop client against {target.name} failed during warm-up")
    before, main_before = cpu_seconds(target.pid), main_thread_cpu_seconds(target.pid)
    client.stdin.write("go\n")
    client.stdin.flush()
    result: dict[str, Any] = json.loads(client.stdout.readline())
    after, main_after = cpu_seconds(target.pid), main_thread_cpu_seconds(target.pid)
    client.wait()
    result["cpu_ms_per_request"] = (after - before) * 1000 / n
    result["main_thread_cpu_ms_per_request"] = (main_after - main_before) * 1000 / n
    return result


def record_loop(samples: Samples, result: dict[str, Any]) -> None:
    latencies = result["latency_s"]
    samples.p50_ms.append(percentile(latencies, 0.50) * 1000)
    samples.p99_ms.append(percentile(latencies, 0.99) * 1000)
    if result["ttft_s"]:
        samples.ttft_p50_ms.append(percentile(result["ttft_s"], 0.50) * 1000)
    samples.cpu_ms.append(result["cpu_ms_per_request"])
    samples.main_thread_cpu_ms.append(result["main_thread_cpu_ms_per_request"])
    samples.errors += result["error_count"]
    samples.error_examples.extend(result["errors"][: 3 - len(samples.error_examples)])
    samples.chunks.extend(result["chunks"])


@dataclass
class LoadSamples:
    rps: list[float] = field(default_factory=list)
    p50_ms: list[float] = field(default_factory=list)
    p99_ms: list[float] = field(default_factory=list)
    cpu_ms: list[float] = field(default_factory=list)
    failures: int = 0


_WRK_UNITS: Final = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


def run_wrk(scratch: Path, target: Target, seconds: int) -> dict[str, float]:
    body_file = scratch / f"wrk-body-{target.name}.json"
    body_file.write_bytes(target.bodies["small"])
    script = scratch / f"wrk-{target.name}.lua"
    header_lines = "\n".join(f'wrk.headers["{k}"] = "{v}"' for k, v in target.headers)
    script.write_text(
        f'local f = io.open("{body_file}", "rb")\nwrk.body = f:read("*a")\nf:close()\n'
        f'wrk.method = "POST"\nwrk.headers["content-type"] = "application/json"\n{header_lines}\n'
    )
    before = cpu_seconds(target.pid)
    out = subprocess.run(
        ["wrk", "-t1", "-c64", f"-d{seconds}s", "--timeout", "10s", "--latency", "-s", str(script),
         f"http://127.0.0.1:{target.port}{target.path}"],
        capture_output=True, text=True, check=True,
    ).stdout
    after = cpu_seconds(target.pid)
    requests = int(_search(r"(\d+) requests in", out))
    failures = 0
    if (bad := re.search(r"Non-2xx or 3xx responses: (\d+)", out)) is not None:
        failures += int(bad.group(1))
    if (errs := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)) is not None:
        failures += sum(int(g) for g in errs.groups())
    return {
        "rps": float(_search(r"Requests/sec:\s+([\d.]+)", out)),
        "p50_ms": _wrk_latency(out, "50%"),
        "p99_ms": _wrk_latency(out, "99%"),
        "cpu_ms": (after - before) * 1000 / max(requests, 1),
        "failures": failures,
    }


def _search(pattern: str, text: str) -> str:
    match = re.search(pattern, text)
    if match is None:
        raise RuntimeError(f"unexpected wrk output (no {pattern!r}):\n{text}")
    return match.group(1)


def _wrk_latency(out: str, label: str) -> float:
    match = re.search(rf"^\s*{re.escape(label)}\s+([\d.]+)(us|ms|s)\s*$", out, re.MULTILINE)
    return float(match.group(1)) * _WRK_UNITS[match.group(2)] if match else float("nan")


# ---------------------------------------------------------------------------------------------------------------
# The run.


@dataclass
class Report:
    plan: Plan
    quick: bool
    latency: dict[tuple[str, str], Samples] = field(default_factory=dict)  # (target, kind)
    load: dict[str, LoadSamples] = field(default_factory=dict)
    rss: dict[str, tuple[float, float, float, float]] = field(default_factory=dict)  # idle, after, peak, anon
    targets: list[Target] = field(default_factory=list)
    litellm_note: str = ""
    litellm_version: str = ""
    profile: Profile | None = None
    passthrough: dict[str, float] = field(default_factory=dict)
    load_average: tuple[float, float] = (0.0, 0.0)  # 1-minute load average when the run began and ended
    elapsed_s: float = 0.0


def post(port: int, path: str, headers: Sequence[tuple[str, str]], body: bytes) -> bytes:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body, method="POST",
                                     headers={"content-type": "application/json", **dict(headers)})
    with urllib.request.urlopen(request, timeout=30) as response:
        data: bytes = response.read()
        return data


def fetch_last(fake_port: int, wire: str) -> bytes:
    with urllib.request.urlopen(f"http://127.0.0.1:{fake_port}/last?path={wire}", timeout=5) as response:
        data: bytes = response.read()
        return data


CLIENT_BODIES: Final[dict[str, Callable[[], dict[str, Any]]]] = {
    "small": lambda: small_body(stream=False),
    "large": lambda: large_body(stream=False),
    "stream": lambda: small_body(stream=True, directive=f"bench:chunks={CHUNKS}"),
    "delayed": lambda: small_body(stream=True, directive=f"bench:chunks={CHUNKS},delay_ms={DELAY_MS}"),
    # Non-streaming clients whose answer has 200 chunks: a modest max_tokens (lynkr asks the upstream for one
    # JSON body) and a long one (lynkr keeps the upstream streaming, so a first-byte timeout cannot trip).
    "whole": lambda: small_body(stream=False, directive=f"bench:chunks={CHUNKS}"),
    "whole_long": lambda: small_body(stream=False, directive=f"bench:chunks={CHUNKS}", max_tokens=32000),
}
MARKERS: Final = {"small": 1, "large": 1, "stream": CHUNKS, "delayed": CHUNKS, "whole": CHUNKS, "whole_long": CHUNKS}


def capture_upstream_bodies(proxy: Service, fake_port: int, wire: str) -> dict[str, bytes]:
    """Send each client body through the proxy once and keep the bytes it sent upstream: the direct baseline."""
    captured = {}
    for kind, build in CLIENT_BODIES.items():
        reply = post(proxy.port, "/v1/messages", ANTHROPIC_HEADERS, encode(build()))
        if b"k0000@" not in reply:
            raise RuntimeError(f"{proxy.name} answered {kind} without the fake's text: {reply[:300]!r}")
        captured[kind] = fetch_last(fake_port, wire)
    return captured


def litellm_version(venv: Path) -> str:
    out = subprocess.run([str(venv / "bin" / "python"), "-c",
                          "import importlib.metadata as m; print(m.version('litellm'))"],
                         capture_output=True, text=True)
    return out.stdout.strip() if out.returncode == 0 else ""


def run(args: argparse.Namespace) -> Report:
    plan = QUICK if args.quick else FULL
    report = Report(plan=plan, quick=args.quick)
    began = time.monotonic()
    load_before = os.getloadavg()[0]
    scratch = Path(tempfile.mkdtemp(prefix="lynkr-proxy-bench-"))
    try:
        with ExitStack() as stack:
            fake_port = free_port()
            fake = stack.enter_context(started(
                "fake", [sys.executable, str(FAKE_SCRIPT), "--port", str(fake_port)], env=base_env(scratch),
                cwd=scratch, port=fake_port, health="/health", log=scratch / "fake.log"))
            lynkr_cmd = [sys.executable, "-m", "lynkr", "serve"]
            openai_port, anthropic_port = free_port(), free_port()
            via_openai = stack.enter_context(started(
                "lynkr-openai", lynkr_cmd, cwd=REPO, port=openai_port, health="/health",
                log=scratch / "lynkr-openai.log",
                env=lynkr_env(scratch, "openai", openai_port, {
                    "MODEL_PROVIDER": "openai", "OPENAI_ENDPOINT": f"http://127.0.0.1:{fake_port}/v1/chat/completions",
                    "OPENAI_API_KEY": UPSTREAM_KEY, "OPENAI_MODEL": "gpt-bench"})))
            via_anthropic = stack.enter_context(started(
                "lynkr-anthropic", lynkr_cmd, cwd=REPO, port=anthropic_port, health="/health",
                log=scratch / "lynkr-anthropic.log",
                env=lynkr_env(scratch, "anthropic", anthropic_port, {
                    "MODEL_PROVIDER": "anthropic", "ANTHROPIC_UPSTREAM_URL": f"http://127.0.0.1:{fake_port}/v1/messages",
                    "ANTHROPIC_UPSTREAM_API_KEY": UPSTREAM_KEY})))
            floor_port = free_port()
            floor = stack.enter_context(started(
                "floor", [sys.executable, __file__, "_floor", str(floor_port),
                          f"http://127.0.0.1:{fake_port}/v1/messages"],
                env=base_env(scratch), cwd=scratch, port=floor_port, health="/health", log=scratch / "floor.log"))
            services = [via_openai, via_anthropic, floor]
            peer: Service | None = None
            venv: Path = args.litellm_venv
            if args.no_litellm:
                report.litellm_note = "skipped (--no-litellm)"
            elif not (venv / "bin" / "litellm").exists():
                report.litellm_note = (f"not installed in {venv} (`python -m venv {venv} && "
                                       f"{venv}/bin/pip install 'litellm[proxy]'`)")
            else:
                report.litellm_version = litellm_version(venv)
                config = scratch / "litellm.yaml"
                config.write_text(litellm_config(fake_port))
                peer_port = free_port()
                peer_env = {**base_env(scratch), "LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_LOG": "ERROR",
                            "LITELLM_TELEMETRY": "False", "DISABLE_ADMIN_UI": "True",
                            "LITELLM_USE_CHAT_COMPLETIONS_URL_FOR_ANTHROPIC_MESSAGES": "True"}
                try:
                    peer = stack.enter_context(started(
                        "litellm", [str(venv / "bin" / "litellm"), "--config", str(config), "--host", "127.0.0.1",
                                    "--port", str(peer_port), "--num_workers", "1"],
                        env=peer_env, cwd=scratch, port=peer_port, health="/health/liveliness",
                        log=scratch / "litellm.log", timeout_s=180))
                    services.append(peer)
                except RuntimeError as error:
                    report.litellm_note = f"failed to start: {error}"
            for service in [fake, *services]:
                service.idle_rss_mb = memory_mb(service.pid)

            client_bodies = {kind: encode(build()) for kind, build in CLIENT_BODIES.items()}
            openai_upstream = capture_upstream_bodies(via_openai, fake_port, "openai")
            anthropic_upstream = capture_upstream_bodies(via_anthropic, fake_port, "anthropic")
            targets = [
                Target("direct (OpenAI chat)", fake, "/v1/chat/completions", OPENAI_HEADERS, openai_upstream),
                Target("lynkr -> OpenAI chat", via_openai, "/v1/messages", ANTHROPIC_HEADERS, client_bodies,
                       baseline="direct (OpenAI chat)"),
                Target("direct (Anthropic)", fake, "/v1/messages", ANTHROPIC_HEADERS, anthropic_upstream),
                Target("lynkr -> Anthropic passthrough", via_anthropic, "/v1/messages", ANTHROPIC_HEADERS,
                       client_bodies, baseline="direct (Anthropic)"),
                Target("floor: hypercorn + httpx relay", floor, "/v1/messages", ANTHROPIC_HEADERS,
                       anthropic_upstream, baseline="direct (Anthropic)"),
            ]
            if peer is not None:
                peer_target = Target("LiteLLM -> OpenAI chat", peer, "/v1/messages", ANTHROPIC_HEADERS, client_bodies,
                                     baseline="direct (OpenAI chat)", peer=True)
                try:
                    for kind in ("small", "large", "stream"):
                        reply = post(peer.port, "/v1/messages", ANTHROPIC_HEADERS, client_bodies[kind])
                        if b"k0000@" not in reply:
                            raise RuntimeError(f"{kind}: {reply[:300]!r}")
                    targets.append(peer_target)
                except (OSError, RuntimeError) as error:
                    report.litellm_note = f"started but did not answer /v1/messages correctly: {error}"
            report.targets = targets
            measure(report, scratch, targets)
            report.passthrough = passthrough_saving()
            for service in [fake, *services]:
                report.rss[service.name] = (service.idle_rss_mb, memory_mb(service.pid),
                                            memory_mb(service.pid, "VmHWM"), memory_mb(service.pid, "RssAnon"))
            if plan.profile_n:
                stack.close()
                report.profile = profile_lynkr(scratch, plan, client_bodies)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    report.elapsed_s = time.monotonic() - began
    report.load_average = (load_before, os.getloadavg()[0])
    return report


def measure(report: Report, scratch: Path, targets: list[Target]) -> None:
    plan = report.plan
    for repeat in range(plan.repeats):
        for kind in ("small", "large"):
            for target in targets:
                n = plan.peer_n if target.peer else (plan.small_n if kind == "small" else plan.large_n)
                warmup = min(plan.warmup, n)
                result = run_loop(scratch, target, kind, n=n, warmup=warmup, markers=MARKERS[kind])
                record_loop(report.latency.setdefault((target.name, kind), Samples()), result)
                _progress(f"repeat {repeat + 1}: {kind:5} {target.name}: p50 "
                          f"{percentile(result['latency_s'], 0.5) * 1000:.3f} ms")
        for target in targets:
            n = plan.peer_stream_n if target.peer else plan.stream_n
            result = run_loop(scratch, target, "stream", n=n, warmup=3, markers=CHUNKS)
            record_loop(report.latency.setdefault((target.name, "stream"), Samples()), result)
        for kind in ("whole", "whole_long"):
            for target in targets:
                n = plan.peer_stream_n if target.peer else plan.whole_n
                result = run_loop(scratch, target, kind, n=n, warmup=3, markers=CHUNKS)
                record_loop(report.latency.setdefault((target.name, kind), Samples()), result)
        for target in targets:
            if repeat == 0:
                run_wrk(scratch, target, plan.load_warmup_s)
            load = run_wrk(scratch, target, plan.load_s)
            samples = report.load.setdefault(target.name, LoadSamples())
            samples.rps.append(load["rps"])
            samples.p50_ms.append(load["p50_ms"])
            samples.p99_ms.append(load["p99_ms"])
            samples.cpu_ms.append(load["cpu_ms"])
            samples.failures += int(load["failures"])
            _progress(f"repeat {repeat + 1}: wrk c=64 {target.name}: {load['rps']:.0f} req/s")
    for target in targets:
        result = run_loop(scratch, target, "delayed", n=plan.delayed_n, warmup=1, markers=CHUNKS, chunk_detail=True)
        record_loop(report.latency.setdefault((target.name, "delayed"), Samples()), result)


# Runs lynkr's own entry point under cProfile with a CPU clock: time.thread_time counts only what the trio
# thread computes, so waits (and other processes preempting lynkr inside a send) do not show up as cost.
PROFILED_LYNKR: Final = """
import cProfile, runpy, sys, time
profiler = cProfile.Profile(time.thread_time)
sys.argv = ["lynkr", "serve"]
profiler.enable()
try:
    runpy.run_module("lynkr", run_name="__main__", alter_sys=True)
except SystemExit:
    pass
finally:
    profiler.disable()
    profiler.dump_stats({stats_file!r})
"""


@dataclass(frozen=True)
class ProfileRow:
    where: str
    own_share: float  # of the trio thread's profiled CPU
    cumulative_share: float
    calls: int


@dataclass(frozen=True)
class Profile:
    requests: int
    cpu_ms_per_request: float  # trio thread, under the profiler (inflated by it)
    own: list[ProfileRow]
    lynkr_cumulative: list[ProfileRow]


def profile_lynkr(scratch: Path, plan: Plan, client_bodies: dict[str, bytes]) -> Profile | None:
    """Run one lynkr (OpenAI conversion) under cProfile for a fixed request mix; rank functions by CPU."""
    stats_file = scratch / "lynkr.pstats"
    with ExitStack() as stack:
        fake_port = free_port()
        stack.enter_context(started(
            "fake", [sys.executable, str(FAKE_SCRIPT), "--port", str(fake_port)], env=base_env(scratch),
            cwd=scratch, port=fake_port, health="/health", log=scratch / "fake-profile.log"))
        port = free_port()
        service = stack.enter_context(started(
            "lynkr-profiled", [sys.executable, "-c", PROFILED_LYNKR.format(stats_file=str(stats_file))],
            cwd=REPO, port=port, health="/health", log=scratch / "lynkr-profiled.log",
            env=lynkr_env(scratch, "profiled", port, {
                "MODEL_PROVIDER": "openai", "OPENAI_ENDPOINT": f"http://127.0.0.1:{fake_port}/v1/chat/completions",
                "OPENAI_API_KEY": UPSTREAM_KEY, "OPENAI_MODEL": "gpt-bench"})))
        target = Target("profiled", service, "/v1/messages", ANTHROPIC_HEADERS, client_bodies)
        for kind in ("small", "large"):
            run_loop(scratch, target, kind, n=plan.profile_n, warmup=10, markers=1)
        run_loop(scratch, target, "stream", n=plan.profile_n // 20, warmup=1, markers=CHUNKS)
        _stop(service.process)
    if not stats_file.exists():
        return None
    requests = 2 * (plan.profile_n + 10) + plan.profile_n // 20 + 1
    raw: dict[tuple[str, int, str], tuple[int, int, float, float, Any]] = pstats.Stats(str(stats_file)).stats  # type: ignore[attr-defined]
    total = sum(tt for _, _, tt, _, _ in raw.values()) or 1.0

    def row(key: tuple[str, int, str]) -> ProfileRow:
        _, calls, own, cumulative, _ = raw[key]
        return ProfileRow(where=_where(key), own_share=own / total, cumulative_share=cumulative / total, calls=calls)

    by_own = sorted(raw, key=lambda key: raw[key][2], reverse=True)[:20]
    ours = [key for key in raw if f"{os.sep}lynkr{os.sep}" in key[0]]
    by_cumulative = sorted(ours, key=lambda key: raw[key][3], reverse=True)[:20]
    return Profile(requests=requests, cpu_ms_per_request=total * 1000 / requests,
                   own=[row(key) for key in by_own], lynkr_cumulative=[row(key) for key in by_cumulative])


def _where(key: tuple[str, int, str]) -> str:
    """``package/module.py:line(function)``, short enough for a table."""
    path, line, function = key
    if path == "~":
        return function  # a builtin, e.g. "<method 'send' of '_socket.socket' objects>"
    parts = Path(path).parts
    for anchor in ("site-packages", "lib"):
        if anchor in parts:
            parts = parts[parts.index(anchor) + 1:]
    if "lynkr" in parts:
        parts = parts[parts.index("lynkr"):]
    return f"{'/'.join(parts[-3:])}:{line}({function})"


def _progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------------------------
# Reporting.


def med(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def fmt(value: float, digits: int = 2) -> str:
    return "n/a" if value != value else f"{value:,.{digits}f}"


def buffering(chunks: list[list[tuple[int, int, int]]]) -> tuple[int, int, float, float, float]:
    """(chunks held back, chunks checked, median lag ms, p99 lag ms, median inter-arrival ms).

    A chunk is held back when it reached the client only after the fake had sent the next one.
    """
    held, checked, lags, gaps = 0, 0, [], []
    for request in chunks:
        for (_, arrived, sent), (_, next_arrived, next_sent) in zip(request, request[1:]):
            checked += 1
            held += arrived >= next_sent
            lags.append((arrived - sent) / 1e6)
            gaps.append((next_arrived - arrived) / 1e6)
        if request:
            lags.append((request[-1][1] - request[-1][2]) / 1e6)
    if not lags:
        return 0, 0, float("nan"), float("nan"), float("nan")
    return held, checked, med(lags), percentile(lags, 0.99), med(gaps) if gaps else float("nan")


def no_buffering(held: int, checked: int) -> bool:
    """Chunks flow one by one: at most 1% held back, which an isolated scheduling stall explains and a buffer
    (which holds nearly every chunk) does not."""
    return checked > 0 and held <= checked // 100


def render(report: Report, command: str) -> str:
    plan = report.plan
    lines = [
        "## Proxy overhead",
        "",
        f"`{command}` ({'quick' if report.quick else 'full'} run, {report.elapsed_s:.0f} s, "
        f"{time.strftime('%Y-%m-%d')}, Python {platform.python_version()}, {os.cpu_count()} cores, "
        f"lynkr {_git_rev()}, LiteLLM {report.litellm_version or 'absent'}, 1-minute load average "
        f"{report.load_average[0]:.1f} at the start and {report.load_average[1]:.1f} at the end).",
        "",
        "Every party is its own process on loopback: the fake upstream (`bench/fake_upstream.py`, asyncio, "
        "hand-rolled HTTP/1.1), `python -m lynkr serve` (openai provider: Anthropic -> chat completions "
        "conversion; anthropic provider: passthrough), LiteLLM's proxy `/v1/messages` -> chat completions "
        "(`use_chat_completions_url_for_anthropic_messages`, cache, retries and cool-downs off, master key set), "
        "the sequential client (raw socket, one keep-alive connection, `perf_counter`) and `wrk -t1 -c64`. "
        "*Direct* sends the fake the exact bytes lynkr sent it (captured from the fake), so *added* is "
        "proxy percentile minus direct percentile for the same upstream work. lynkr asks the upstream for one "
        "JSON body when a non-streaming client asks for at most 4096 output tokens (the small body asks 1024) and "
        "for a stream otherwise (the Claude Code body asks 32000), and the direct baselines send the same. *floor* is a relay built from the same "
        "stack (trio + hypercorn + httpx, `_floor` mode of this script) that forwards bytes and does nothing "
        "else: what remains above it is lynkr's own work. "
        f"Figures are medians over {plan.repeats} interleaved repeat(s) of {plan.small_n} small / "
        f"{plan.large_n} large sequential requests ({plan.peer_n} for LiteLLM), {plan.stream_n} streams "
        f"({plan.peer_stream_n} for LiteLLM), {plan.load_s} s of wrk after a {plan.load_warmup_s} s warm-up. CPU/request is the process tree's utime+stime from /proc around a fixed "
        "number of sequential requests (and around the wrk run). The machine has 2 cores shared by every "
        "process here and is noisy: read differences below ~0.1 ms as noise, and prefer the CPU columns to the "
        "wall-clock ones.",
        "",
    ]
    if report.litellm_note:
        lines += [f"LiteLLM: {report.litellm_note}", ""]
    lines += _latency_table(report) + _load_table(report) + _stream_table(report) + _whole_table(report)
    lines += _passthrough_table(report.passthrough) + _memory_table(report)
    lines += _targets_table(report)
    if report.profile is not None:
        lines += _profile_tables(report.profile, plan)
    return "\n".join(lines) + "\n\n"


def _added(report: Report, target: Target, kind: str) -> tuple[float, float, float]:
    """(p50, p99, TTFT p50) of ``target`` minus those of its direct baseline, for one workload."""
    mine, base = report.latency[(target.name, kind)], report.latency[(target.baseline or "", kind)]
    return (med(mine.p50_ms) - med(base.p50_ms), med(mine.p99_ms) - med(base.p99_ms),
            med(mine.ttft_p50_ms) - med(base.ttft_p50_ms))


def _latency_table(report: Report) -> list[str]:
    lines = ["### Latency at concurrency 1", "",
             "| target | body | p50 ms | p99 ms | added p50 ms | added p99 ms | CPU ms/request "
             "| of which main thread | errors |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for kind, label in (("small", "small (~130 B)"), ("large", "Claude Code (~60 kB, 20 tools)")):
        for target in report.targets:
            samples = report.latency[(target.name, kind)]
            added = ("", "")
            if target.baseline is not None:
                p50, p99, _ = _added(report, target, kind)
                added = (fmt(p50, 3), fmt(p99, 3))
            lines.append(f"| {target.name} | {label} | {fmt(med(samples.p50_ms), 3)} | {fmt(med(samples.p99_ms), 3)} "
                         f"| {added[0]} | {added[1]} | {fmt(med(samples.cpu_ms), 3)} "
                         f"| {fmt(med(samples.main_thread_cpu_ms), 3)} | {samples.errors} |")
    return lines


def _load_table(report: Report) -> list[str]:
    lines = ["", "### Throughput at concurrency 64 (wrk, small body, non-streaming)", "",
             "| target | req/s | vs direct | p50 ms | p99 ms | CPU ms/request | failed |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for target in report.targets:
        load = report.load[target.name]
        ratio = ""
        if target.baseline is not None:
            ratio = f"{med(load.rps) / med(report.load[target.baseline].rps):.3f}x"
        lines.append(f"| {target.name} | {fmt(med(load.rps), 0)} | {ratio} | {fmt(med(load.p50_ms))} "
                     f"| {fmt(med(load.p99_ms))} | {fmt(med(load.cpu_ms), 3)} | {load.failures} |")
    return lines


def _stream_table(report: Report) -> list[str]:
    lines = ["", f"### Streaming ({CHUNKS} chunks)", "",
             f"TTFT is the time to the first text chunk. The no-buffering check uses a fake that waits "
             f"{DELAY_MS} ms between chunks and stamps each with its send time: *held* counts chunks that "
             "reached the client only after the fake had sent the next one; *lag* is arrival minus send. "
             "A buffering proxy holds nearly every chunk; the verdict below counts at most 1% held chunks "
             "(isolated scheduling stalls on this shared machine) as no buffering.",
             "",
             f"*CPU ms/stream* is the process's utime+stime per {CHUNKS}-chunk burst (the fake writes every chunk "
             f"at once, each in its own HTTP chunk); *per chunk* divides it by {CHUNKS}, fixed per-request cost "
             "included.",
             "",
             "| target | TTFT p50 ms | TTFT added ms | total p50 ms | total added ms | CPU ms/stream "
             "| CPU ms/chunk | held / checked | lag p50 ms | lag p99 ms | inter-arrival p50 ms |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for target in report.targets:
        stream = report.latency[(target.name, "stream")]
        added = ("", "")
        if target.baseline is not None:
            total, _, ttft = _added(report, target, "stream")
            added = (fmt(ttft, 3), fmt(total, 3))
        held, checked, lag50, lag99, gap = buffering(report.latency[(target.name, "delayed")].chunks)
        cpu = med(stream.cpu_ms)
        lines.append(f"| {target.name} | {fmt(med(stream.ttft_p50_ms), 3)} | {added[0]} "
                     f"| {fmt(med(stream.p50_ms), 3)} | {added[1]} | {fmt(cpu, 2)} | {fmt(cpu / CHUNKS, 3)} "
                     f"| {held} / {checked} | {fmt(lag50, 3)} | {fmt(lag99, 3)} | {fmt(gap, 3)} |")
    return lines


def _whole_table(report: Report) -> list[str]:
    lines = ["", f"### Non-streaming clients, {CHUNKS}-chunk answers", "",
             "The same answer (the fake's 200 text pieces) for a client that does not stream. With `max_tokens` "
             "1024, lynkr asks the upstream for one JSON body (`LYNKR_JSON_UPSTREAM_MAX_TOKENS`, default 4096); "
             "with 32000 it keeps the upstream streaming (a long answer as one body would trip the first-byte "
             "timeout) and assembles the stream. *direct* and *floor* send the fake the bytes lynkr sent it, so "
             "they do the same upstream work.", "",
             "| target | max_tokens 1024: p50 ms | CPU ms/request | max_tokens 32000: p50 ms | CPU ms/request |",
             "| --- | ---: | ---: | ---: | ---: |"]
    for target in report.targets:
        short, long = report.latency[(target.name, "whole")], report.latency[(target.name, "whole_long")]
        lines.append(f"| {target.name} | {fmt(med(short.p50_ms), 3)} | {fmt(med(short.cpu_ms), 3)} "
                     f"| {fmt(med(long.p50_ms), 3)} | {fmt(med(long.cpu_ms), 3)} |")
    return lines


def _memory_table(report: Report) -> list[str]:
    lines = ["", "### Memory", "",
             "VmRSS counts file pages mapped into the process too: lynkr maps its LMDB event log, which grows "
             "with every recorded request (the 60 kB bodies included), so *anonymous* (RssAnon: heap, stacks) "
             "is the figure that shows a leak.", "",
             "| process | RSS idle MB | RSS after load MB | of which anonymous MB | peak RSS MB |",
             "| --- | ---: | ---: | ---: | ---: |"]
    for name, (idle, after, peak, anon) in report.rss.items():
        lines.append(f"| {name} | {fmt(idle, 1)} | {fmt(after, 1)} | {fmt(anon, 1)} | {fmt(peak, 1)} |")
    return lines


def _targets_table(report: Report) -> list[str]:
    lines = ["", "### Against the targets", "", f"Targets: {TARGETS_TEXT}. Reference figures from the issue: "
             "the original Node.js project ~3 ms p50 added, ~270 req/s, ~3.5 ms CPU/request; LiteLLM ~18 ms, "
             "~55 req/s, ~19 ms CPU/request.", "",
             "| proxy | p50 added (small / large) | p99 added (small / large) | req/s c=64 | CPU ms/req "
             "(small / large) | TTFT added | buffering | RSS after load MB | verdict |",
             "| --- | --- | --- | ---: | --- | ---: | --- | ---: | --- |"]
    for target in report.targets:
        if target.baseline is None:
            continue
        small, large = _added(report, target, "small"), _added(report, target, "large")
        cpu = (med(report.latency[(target.name, "small")].cpu_ms), med(report.latency[(target.name, "large")].cpu_ms))
        rps = med(report.load[target.name].rps)
        ttft = _added(report, target, "stream")[2]
        held, checked, *_ = buffering(report.latency[(target.name, "delayed")].chunks)
        rss_after = report.rss[target.service.name][1]
        checks = {
            "p50": max(small[0], large[0]) <= 1.0, "p99": max(small[1], large[1]) <= 3.0, "req/s": rps >= 1000,
            "CPU": max(cpu) <= 0.8, "TTFT": ttft <= 1.0, "buffering": no_buffering(held, checked),
            "RSS": rss_after <= 150,
        }
        missed = [name for name, ok in checks.items() if not ok]
        lines.append(
            f"| {target.name} | {fmt(small[0], 3)} / {fmt(large[0], 3)} {_mark(checks['p50'])} "
            f"| {fmt(small[1], 3)} / {fmt(large[1], 3)} {_mark(checks['p99'])} "
            f"| {fmt(rps, 0)} {_mark(checks['req/s'])} | {fmt(cpu[0], 3)} / {fmt(cpu[1], 3)} {_mark(checks['CPU'])} "
            f"| {fmt(ttft, 3)} {_mark(checks['TTFT'])} "
            f"| {'none held' if held == 0 else f'{held} held'} {_mark(checks['buffering'])} "
            f"| {fmt(rss_after, 1)} {_mark(checks['RSS'])} "
            f"| {'all met' if not missed else 'not met: ' + ', '.join(missed)} |")
    return lines


def _mark(ok: bool) -> str:
    return "(met)" if ok else "(**not met**)"


def _profile_tables(profile: Profile, plan: Plan) -> list[str]:
    lines = ["", "### Where lynkr's trio thread spends its CPU (cProfile with a thread CPU clock)", "",
             f"One more lynkr (OpenAI conversion) under `cProfile.Profile(time.thread_time)`: {plan.profile_n} small "
             f"+ {plan.profile_n} large sequential requests and {plan.profile_n // 20} {CHUNKS}-chunk streams, "
             f"{profile.cpu_ms_per_request:.2f} ms of trio-thread CPU per request under the profiler (which "
             "inflates it). Shares are of the trio thread's profiled CPU; the recorder's LMDB commits run in a "
             "worker thread and are not in these figures (the *of which main thread* column above splits them off). "
             "The profiler's per-call cost inflates call-heavy code (trio's scheduler most), so read the shares as "
             "a ranking.", "",
             "| own CPU | cumulative | calls | function |", "| ---: | ---: | ---: | --- |"]
    lines += [f"| {r.own_share:.1%} | {r.cumulative_share:.1%} | {r.calls:,} | `{r.where}` |" for r in profile.own]
    lines += ["", "lynkr's own functions by cumulative CPU (their callees included):", "",
              "| cumulative | own CPU | calls | function |", "| ---: | ---: | ---: | --- |"]
    lines += [f"| {r.cumulative_share:.1%} | {r.own_share:.1%} | {r.calls:,} | `{r.where}` |"
              for r in profile.lynkr_cumulative]
    return lines


def _git_rev() -> str:
    out = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--", "lynkr"], capture_output=True,
                           text=True).stdout.strip()
    return (out.stdout.strip() or "unknown") + (" + uncommitted lynkr/ changes" if dirty else "")


def write_section(path: Path, section: str) -> None:
    """Replace this benchmark's section in ``path`` (or add it), leaving other sections alone."""
    text = path.read_text() if path.exists() else "# Benchmark results\n\n"
    heading = "## Proxy overhead"
    start = text.find(heading + "\n")
    if start == -1:
        text = text.rstrip("\n") + "\n\n" + section
    else:
        end = text.find("\n## ", start + len(heading))
        text = text[:start] + section + (text[end + 1:] if end != -1 else "")
    path.write_text(text)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["_client"]:
        return client_main(argv[1])
    if argv[:1] == ["_floor"]:
        return floor_main(int(argv[1]), argv[2])
    if argv[:1] == ["passthrough-saving"]:
        print("\n".join(_passthrough_table(passthrough_saving())))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="one short repeat (about a minute)")
    parser.add_argument("--results", type=Path, help="replace the '## Proxy overhead' section of this markdown file")
    parser.add_argument("--litellm-venv", type=Path, default=DEFAULT_LITELLM_VENV,
                        help=f"virtualenv with litellm[proxy] installed (default {DEFAULT_LITELLM_VENV})")
    parser.add_argument("--no-litellm", action="store_true", help="leave LiteLLM out")
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        print("proxy_overhead: wrk is not installed; apt-get install -y wrk", file=sys.stderr)
        return 1
    report = run(args)
    command = "python bench/proxy_overhead.py " + " ".join(argv)
    section = render(report, command.strip())
    print(section)
    if args.results is not None:
        write_section(args.results, section)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
