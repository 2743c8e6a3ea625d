"""Event log benchmark: appends, rebuild and snapshots, bytes per event and per Claude Code session, daemon start.

    .venv/bin/python bench/eventlog.py --events 1000000 --repeats 3 --results bench/RESULTS.md

One run measures, over ``--repeats`` repeats (medians are quoted):

* durable append rate: ``--producers`` trio tasks call ``Recorder.record_durably`` through the real recorder
  actor (scrubbing with one known secret, batching, one fsync'd LMDB transaction per batch) into a fresh log;
  and the same with producers that only queue (``Recorder.record``, how most actors record), timed until
  the recorder has committed the last batch;
* full rebuild of all derived state without a snapshot (``rebuild(use_snapshots=False)``, every registered
  fold, as ``lynkr replay --rebuild`` and a start-up without a snapshot do), and a plain ``store.read()`` loop
  (which decodes every record into its event);
* writing the snapshots of the rebuilt state, their size, and a rebuild from them;
* log bytes of a 200-turn Claude Code session (``tests/claude_session.py``) stored content-addressed, against
  its final transcript plus responses, and against storing every body whole (``request.received`` v2);
* bytes per event on disk for the mix and for each kind alone;
* idle RSS of a fresh process that opened the filled log;
* start-up of the daemon (``python -m lynkr serve``) against the filled log until ``GET /health`` answers
  200 (the daemon rebuilds derived state before it is ready), without a snapshot and then with the one the
  previous daemon wrote at shutdown, and the daemon's RSS once idle.

The mix repeats one turn of four events: ``request.received`` with a ~2 kB body (built as the daemon builds
it, ``RequestReceived.of(..., body=<the raw bytes>)``), two small ``upstream.attempted`` and
``response.completed`` with a ~500 B message; turns rotate over 1000 sessions.  The events are built before
timing and reused (see ``mix``).  The machine's load average is reported before and after, since other
work on the machine moves every figure.
"""

from __future__ import annotations

import argparse
import gc
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

import orjson
import trio

# Run as a script from anywhere: the repository root holds the lynkr package.
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from lynkr.actors.recorder import Append, Hub, Recorder, run  # noqa: E402
from lynkr.events.catalog import RequestReceived, ResponseCompleted, UpstreamAttempted  # noqa: E402
from lynkr.events.lmdb_store import LmdbEventStore  # noqa: E402
from lynkr.events.codec import encode_payload, payload_of  # noqa: E402
from lynkr.events.projections import SESSIONS, Projection, SessionsState, apply_session_event, replay  # noqa: E402
from lynkr.events.records import Event  # noqa: E402
from lynkr.events.scrub import Scrubber  # noqa: E402
from lynkr.events.snapshots import DERIVED_STATE, rebuild, save_snapshots  # noqa: E402
from tests.claude_session import session  # noqa: E402

SESSIONS_IN_MIX = 1000
KNOWN_SECRET = "sk-bench-0123456789abcdefghijklmnop"
MiB = 1024 * 1024

Stamped = tuple[str, Event]


def request_received(turn: int) -> RequestReceived:
    session = f"session-{turn % SESSIONS_IN_MIX:04d}"
    body = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 8192,
        "stream": True,
        "system": "You are Claude Code, Anthropic's official CLI for Claude. " * 4,
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": f"turn {turn}: " + "please refactor this " * 25}]},
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": "Reading the file first. " * 10},
                    {"type": "tool_use", "id": f"toolu_{turn}", "name": "Read", "input": {"file_path": "/src/a.py"}},
                ],
            },
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": f"toolu_{turn}", "content": "def a():\n    pass\n" * 12}],
            },
        ],
        "tools": [{"name": name, "input_schema": {"type": "object"}} for name in ("Read", "Edit", "Bash", "Grep")],
    }
    return RequestReceived.of(
        request_id=f"req_{turn:08d}",
        session_id=session,
        path="/v1/messages",
        headers={"x-api-key": KNOWN_SECRET, "anthropic-version": "2023-06-01", "content-type": "application/json"},
        request=body,
        body=orjson.dumps(body),
    )


def upstream_attempted(turn: int, attempt: int) -> UpstreamAttempted:
    return UpstreamAttempted(
        request_id=f"req_{turn:08d}",
        provider="ollama",
        attempt=attempt,
        status=200 if attempt == 2 else 503,
        latency_ms=812.5,
        error=None if attempt == 2 else "upstream overloaded",
        will_retry=attempt == 1,
    )


def response_completed(turn: int) -> ResponseCompleted:
    return ResponseCompleted(
        request_id=f"req_{turn:08d}",
        session_id=f"session-{turn % SESSIONS_IN_MIX:04d}",
        provider="ollama",
        model="llama3.1",
        message={
            "id": f"msg_{turn:08d}",
            "type": "message",
            "role": "assistant",
            "model": "llama3.1",
            "content": [{"type": "text", "text": "Here is the refactored function. " * 12}],
            "stop_reason": "end_turn",
            "usage": {"input_tokens": 1834, "output_tokens": 97},
        },
        latency_ms=1630.0,
    )


def one_turn(turn: int) -> list[Stamped]:
    session = f"session-{turn % SESSIONS_IN_MIX:04d}"
    return [
        (session, request_received(turn)),
        (session, upstream_attempted(turn, 1)),
        (session, upstream_attempted(turn, 2)),
        (session, response_completed(turn)),
    ]


def mix(count: int) -> Iterator[Stamped]:
    """``count`` events of the mix, in turn order.

    Events are built once for one turn per session and then reused, so that the measurement is of the
    recorder and the log rather than of building dicts in the producers.
    """
    pool = [stamped for turn in range(SESSIONS_IN_MIX) for stamped in one_turn(turn)]
    for n in range(count):
        yield pool[n % len(pool)]


# Appending


async def append_through_recorder(
    path: Path, count: int, producers: int, batch_max: int, *, durably: bool = True
) -> float:
    """Fill a fresh log at ``path`` with ``count`` events; returns seconds until all are committed.

    ``durably``: each producer waits for every event's acknowledgement (``record_durably``); otherwise
    producers only queue (``record``) and the clock stops when the recorder has flushed the last batch.
    """
    events = mix(count)
    with LmdbEventStore.open(path) as store:
        send, receive = trio.open_memory_channel[Append](producers * 4)
        hub = Hub()
        recorder = Recorder(send, hub)

        async def produce() -> None:
            for stream, event in events:  # shared iterator: each event is taken once
                if durably:
                    await recorder.record_durably(stream, event)
                else:
                    await recorder.record(stream, event)

        async with trio.open_nursery() as nursery:
            await nursery.start(
                partial(run, store, receive, scrubber=Scrubber([KNOWN_SECRET]), hub=hub, batch_max=batch_max)
            )
            started = time.perf_counter()
            async with send:
                async with trio.open_nursery() as workers:
                    for _ in range(producers):
                        workers.start_soon(produce)
        # The recorder has returned: everything queued is committed.
        elapsed = time.perf_counter() - started
        stats = hub.statistics()
        print(f"  appended {stats.events} events in {stats.batches} batches "
              f"(largest {stats.largest_batch}) in {elapsed:.2f} s", file=sys.stderr)
    return elapsed


# Replaying


def time_full_rebuild(path: Path) -> float:
    with LmdbEventStore.open(path, readonly=True) as store:
        rebuilt = rebuild(store, use_snapshots=False)
        assert len(rebuilt.states["sessions"].sessions) == SESSIONS_IN_MIX
    return rebuilt.seconds


def time_fold_over_events(path: Path) -> float:
    """The sessions fold as replay ran it before folds over payloads: an event object built per record."""
    over_events = Projection(initial=SessionsState(), apply=apply_session_event, topics=SESSIONS.topics)
    with LmdbEventStore.open(path, readonly=True) as store:
        started = time.perf_counter()
        replay(store, {"sessions": over_events})
        return time.perf_counter() - started


def snapshot_figures(path: Path) -> tuple[float, int, float]:
    """Seconds to write the snapshots of a full rebuild, their bytes, and seconds to rebuild from them."""
    with LmdbEventStore.open(path) as store:
        rebuilt = rebuild(store, use_snapshots=False)
        started = time.perf_counter()
        save_snapshots(store, DERIVED_STATE, rebuilt.states, rebuilt.last_seq)
        written = time.perf_counter() - started
        size = sum(len(store.load_snapshot(d.name) or b"") for d in DERIVED_STATE)
        last_seq = rebuilt.last_seq
        # The full state is millions of objects: collect it now, or the collector's pass over it lands in
        # the timing below (a starting daemon never holds it).
        del rebuilt
        gc.collect()
        loaded = rebuild(store)
        assert all(origin.snapshot_seq == last_seq for origin in loaded.origins)
    return written, size, loaded.seconds


def delete_snapshots(path: Path) -> None:
    with LmdbEventStore.open(path) as store:
        store.delete_snapshots()


# A Claude Code session


def claude_code_session_bytes(scratch: Path, turns: int = 200) -> dict[str, int]:
    """Log bytes of one ``turns``-turn Claude Code session, recorded as the daemon records each turn."""
    exchanges = list(session(turns))
    path = scratch / "claude-session"
    whole_records = 0
    with LmdbEventStore.open(path) as store:
        for n, exchange in enumerate(exchanges):
            request = RequestReceived.of(
                request_id=f"req_{n:04d}", session_id="sess", path="/v1/messages",
                headers={"anthropic-version": "2023-06-01", "content-type": "application/json", "x-api-key": "***"},
                request=exchange.request, body=exchange.body,
            )
            turn: list[Stamped] = [
                ("sess", request),
                ("sess", UpstreamAttempted(request_id=f"req_{n:04d}", provider="anthropic", attempt=1, status=200,
                                           latency_ms=2400.0, error=None, will_retry=False)),
                ("sess", ResponseCompleted(request_id=f"req_{n:04d}", session_id="sess", provider="anthropic",
                                           model="claude-opus-5-5", message=exchange.response, latency_ms=2400.0)),
            ]
            store.append(turn)
            # The same request as v2 stored it: the body whole (compressed as a large record).
            payload = {k: v for k, v in payload_of(request).items() if k not in ("template", "parts")}
            whole_records += len(encode_payload(1, "sess", RequestReceived.TYPE, 2, {**payload, "body": exchange.body}))
            whole_records += sum(len(encode_payload(1, "sess", e.TYPE, e.VERSION, payload_of(e))) for _, e in turn[1:])
        used = store.stats().bytes_used
    shutil.rmtree(path)
    return {
        "final": len(exchanges[-1].body),
        "responses": sum(len(orjson.dumps(exchange.response)) for exchange in exchanges),
        "bodies": sum(len(exchange.body) for exchange in exchanges),
        "whole_records": whole_records,
        "log": used,
    }


def time_decode_loop(path: Path) -> float:
    with LmdbEventStore.open(path, readonly=True) as store:
        started = time.perf_counter()
        for _ in store.read():
            pass
        return time.perf_counter() - started


# Sizes


def bytes_per_event(path: Path) -> float:
    with LmdbEventStore.open(path, readonly=True) as store:
        stats = store.stats()
        return stats.bytes_used / stats.events


def bytes_per_event_of(kind: Callable[[int], Event], scratch: Path, count: int = 20000) -> float:
    path = scratch / "one-kind"
    with LmdbEventStore.open(path) as store:
        for start in range(0, count, 1000):
            store.append([("session-0000", kind(n)) for n in range(start, start + 1000)])
        stats = store.stats()
    shutil.rmtree(path)
    return stats.bytes_used / stats.events


# Processes


_OPEN_AND_IDLE = """
import sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[2])
from lynkr.events.lmdb_store import LmdbEventStore
store = LmdbEventStore.open(Path(sys.argv[1]))
store.last_seq(); store.stats()
time.sleep(0.5)
print(open("/proc/self/status").read())
"""


def idle_rss_after_open(path: Path) -> dict[str, int]:
    """VmRSS, RssAnon and RssFile (kB) of a fresh process that opened the log and idles."""
    out = subprocess.run(
        [sys.executable, "-c", _OPEN_AND_IDLE, str(path), str(REPO)], check=True, capture_output=True, text=True
    ).stdout
    return _rss_fields(out)


def _rss_fields(status: str) -> dict[str, int]:
    fields = {}
    for line in status.splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "RssAnon", "RssFile"):
            fields[name] = int(value.split()[0])
    return fields


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def daemon_start(data_dir: Path, workspace: Path, timeout_s: float = 60.0) -> tuple[float, dict[str, int]]:
    """Seconds from spawning the daemon to ``GET /health`` == 200, and its RSS one second later."""
    port = free_port()
    env = {
        **os.environ,
        "LYNKR_DATA_DIR": str(data_dir),
        "PORT": str(port),
        "LYNKR_HOST": "127.0.0.1",
        "WORKSPACE_ROOT": str(workspace),
        "PYTHONPATH": str(REPO),
    }
    started = time.perf_counter()
    daemon = subprocess.Popen(
        [sys.executable, "-m", "lynkr", "serve"],
        cwd=workspace,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        while True:
            if daemon.poll() is not None:
                error = daemon.stderr.read().decode() if daemon.stderr else ""
                raise RuntimeError(f"the daemon exited with {daemon.returncode}: {error[-2000:]}")
            if time.perf_counter() - started > timeout_s:
                raise RuntimeError(f"the daemon did not become healthy within {timeout_s} s")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as response:
                    if response.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.02)
        seconds = time.perf_counter() - started
        time.sleep(1.0)
        rss = _rss_fields(Path(f"/proc/{daemon.pid}/status").read_text())
    finally:
        daemon.send_signal(signal.SIGINT)
        try:
            daemon.wait(timeout=120)  # it snapshots derived state as it stops
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()
    return seconds, rss


# Report


def median(values: list[float]) -> float:
    return statistics.median(values)


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="events in the log (default 1,000,000)")
    parser.add_argument("--repeats", type=int, default=3, help="repeats per measurement; medians are quoted")
    parser.add_argument("--producers", type=int, default=256, help="concurrent record_durably tasks")
    parser.add_argument("--batch-max", type=int, default=256, help="the recorder's largest batch")
    parser.add_argument("--no-daemon", action="store_true", help="skip the daemon start-up measurement")
    parser.add_argument("--results", type=Path, help="replace the '## Event log' section of this markdown file")
    parser.add_argument("--scratch", type=Path, help="folder for the logs (default: a temporary folder)")
    args = parser.parse_args(argv)
    command = ".venv/bin/python bench/eventlog.py " + " ".join(argv if argv is not None else sys.argv[1:])

    load_before = load_average()
    scratch = Path(tempfile.mkdtemp(prefix="lynkr-bench-", dir=args.scratch))
    try:
        data_dir = scratch / "data"
        log_path = data_dir / "events"
        workspace = scratch / "workspace"
        workspace.mkdir()

        queued_rates, append_rates = [], []
        for repeat in range(args.repeats):
            shutil.rmtree(data_dir, ignore_errors=True)
            print(f"append, queued {repeat + 1}/{args.repeats}", file=sys.stderr)
            seconds = trio.run(
                partial(append_through_recorder, durably=False),
                log_path, args.events, args.producers, args.batch_max,
            )
            queued_rates.append(args.events / seconds)
        for repeat in range(args.repeats):
            shutil.rmtree(data_dir, ignore_errors=True)
            print(f"append, durable {repeat + 1}/{args.repeats}", file=sys.stderr)
            seconds = trio.run(append_through_recorder, log_path, args.events, args.producers, args.batch_max)
            append_rates.append(args.events / seconds)

        replay_rates, event_fold_rates, decode_rates = [], [], []
        for repeat in range(args.repeats):
            print(f"rebuild {repeat + 1}/{args.repeats}", file=sys.stderr)
            replay_rates.append(args.events / time_full_rebuild(log_path))
            event_fold_rates.append(args.events / time_fold_over_events(log_path))
            decode_rates.append(args.events / time_decode_loop(log_path))
        print("snapshots", file=sys.stderr)
        snapshot_write_s, snapshot_bytes, snapshot_load_s = snapshot_figures(log_path)
        print("claude code session", file=sys.stderr)
        claude = claude_code_session_bytes(scratch)

        mixed_bytes = bytes_per_event(log_path)
        kinds = {
            "request.received (~2 kB body)": bytes_per_event_of(request_received, scratch),
            "upstream.attempted": bytes_per_event_of(partial(upstream_attempted, attempt=1), scratch),
            "response.completed (~500 B message)": bytes_per_event_of(response_completed, scratch),
        }
        opened_rss = idle_rss_after_open(log_path)

        daemon_lines: list[str] = []
        if not args.no_daemon:
            if not (REPO / "lynkr" / "daemon.py").exists():
                daemon_lines.append("- daemon start: not measured (lynkr/daemon.py does not exist yet)")
            else:
                starts: list[float] = []
                cold_starts: list[float] = []
                daemon_rss: dict[str, int] = {}
                for repeat in range(args.repeats):
                    print(f"daemon start without a snapshot {repeat + 1}/{args.repeats}", file=sys.stderr)
                    delete_snapshots(log_path)
                    seconds, _ = daemon_start(data_dir, workspace)  # it writes a snapshot as it stops
                    cold_starts.append(seconds)
                    print(f"daemon start with a snapshot {repeat + 1}/{args.repeats}", file=sys.stderr)
                    seconds, daemon_rss = daemon_start(data_dir, workspace)
                    starts.append(seconds)
                daemon_lines += [
                    f"- daemon start with {args.events:,} events to `GET /health` 200, **with a snapshot**: "
                    f"**{median(starts):.2f} s** median (runs: {', '.join(f'{s:.2f}' for s in starts)}; "
                    f"target <= 1 s)",
                    f"- the same **without a snapshot** (a full rebuild before ready): **{median(cold_starts):.2f} s** "
                    f"median (runs: {', '.join(f'{s:.2f}' for s in cold_starts)}; target <= 5 s)",
                    f"- daemon idle RSS after start: {daemon_rss.get('VmRSS', 0) / 1024:.1f} MiB "
                    f"(anon {daemon_rss.get('RssAnon', 0) / 1024:.1f} MiB, "
                    f"file-backed {daemon_rss.get('RssFile', 0) / 1024:.1f} MiB)",
                ]

        lines = [
            "## Event log",
            "",
            f"Command: `{command}`",
            "",
            f"Machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}; "
            f"{args.events:,} events, medians of {args.repeats} repeats; load average (1/5/15 min) "
            f"{load_before} before, {load_average()} after.",
            "",
            f"- durable append through the recorder actor ({args.producers} concurrent `record_durably` producers, "
            f"batch_max {args.batch_max}, scrubbing on): **{median(append_rates):,.0f} events/s** "
            f"(runs: {', '.join(f'{r:,.0f}' for r in append_rates)}; target >= 40k)",
            f"- the same with producers that only queue (`record`), until the last batch is committed: "
            f"**{median(queued_rates):,.0f} events/s** (runs: {', '.join(f'{r:,.0f}' for r in queued_rates)})",
            f"- full rebuild of all derived state without a snapshot (`rebuild`, every registered fold, over "
            f"payloads): **{median(replay_rates):,.0f} events/s**, {args.events / median(replay_rates):.2f} s "
            f"(runs: {', '.join(f'{r:,.0f}' for r in replay_rates)}; target >= 200k, <= 5 s)",
            f"- the same sessions fold over event objects (how replay folded before, same run): "
            f"{median(event_fold_rates):,.0f} events/s (runs: {', '.join(f'{r:,.0f}' for r in event_fold_rates)})",
            f"- snapshots of the rebuilt state: written in {snapshot_write_s:.2f} s, {snapshot_bytes / MiB:.1f} MiB; "
            f"a rebuild from them (load, validate, fold the empty tail): **{snapshot_load_s:.3f} s**",
            f"- plain decode loop (`store.read()`): **{median(decode_rates):,.0f} events/s** "
            f"(runs: {', '.join(f'{r:,.0f}' for r in decode_rates)})",
            f"- bytes per event on disk, mix: **{mixed_bytes:,.0f}**; "
            + "; ".join(f"{name} alone: {size:,.0f}" for name, size in kinds.items()),
            f"- a 200-turn Claude Code session (`tests/claude_session.py`): final transcript {claude['final']:,} B "
            f"plus responses {claude['responses']:,} B; its request bodies add up to {claude['bodies']:,} B "
            f"({claude['bodies'] / claude['final']:.0f}x the final transcript); stored whole (request.received v2, "
            f"large records compressed) its records took {claude['whole_records']:,} B; content-addressed "
            f"(v3) the log takes **{claude['log']:,} B = "
            f"{claude['log'] / (claude['final'] + claude['responses']):.2f}x** final transcript plus responses "
            f"(target <= 1.5x)",
            f"- idle RSS of a process that opened the {args.events:,}-event log: "
            f"{opened_rss.get('VmRSS', 0) / 1024:.1f} MiB",
            *daemon_lines,
            "",
        ]
        report = "\n".join(lines)
        print(report)
        if args.results is not None:
            write_section(args.results, report)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


def write_section(path: Path, section: str) -> None:
    """Replace this benchmark's section in ``path`` (or add it), leaving other sections alone."""
    text = path.read_text() if path.exists() else "# Benchmark results\n\n"
    heading = "## Event log"
    start = text.find(heading + "\n")
    if start == -1:
        text = text.rstrip("\n") + "\n\n" + section
    else:
        end = text.find("\n## ", start + len(heading))
        rest = text[end + 1 :] if end != -1 else ""
        text = text[:start] + section.rstrip("\n") + ("\n\n" + rest if rest else "\n")
    path.write_text(text)


if __name__ == "__main__":
    raise SystemExit(main())
