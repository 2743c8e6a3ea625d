"""Prompt cache: a hit answered end to end, beside a miss to the fast fake upstream, in the same run.

    /work/main/.venv/bin/python bench/cache.py --results bench/RESULTS.md

Two processes besides this one: the fake upstream (``bench/fake_upstream.py``, Anthropic Messages) and
``python -m lynkr serve`` in front of it (``MODEL_PROVIDER=anthropic``, the prompt cache on).  This process is the
client: one persistent HTTP/1.1 connection, sequential requests (concurrency 1), ``perf_counter`` around each
whole exchange (request written, response read to its end).

The request is ``bench/proxy_overhead.py``'s ~60 kB Claude Code turn (cached system blocks, a role:"system"
message, a tool round trip, 20 tool schemas), streaming, with a billing line that changes on every request as
the CLI's does across its turns:

* **hit**: the same conversation every time (only the billing line and metadata change): lynkr routes it, keys
  it, and answers from the cache without calling the upstream;
* **miss**: a new last user message every time: lynkr keys it, misses, goes to the fake upstream, and keeps the
  answer (a durable store; the LRU evicts the oldest beyond 64 entries);
* **hit, non-streaming**: the hit as a JSON client asks for it;
* **hit, small request**: a one-line request's hit, for what a hit costs whatever the request's size;
* **GET /health**: what the HTTP edge alone costs (hypercorn, h11, lynkr's routing and guard; no actor);
* **bare hypercorn**: the hit's request sent to ``bench/hypercorn_floor.py``, hypercorn with lynkr's settings and
  an app that only reads the body and writes a hit's answer as lynkr does: the floor of this stack here.

Hits and misses alternate, so both see the same machine load.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from contextlib import ExitStack
from datetime import date
from pathlib import Path
from typing import Any, Final

import proxy_overhead as po  # bench/ is this script's folder: the other benchmark's helpers

TARGET_HIT_P50_MS: Final = 1.5
HEADERS: Final = (("x-api-key", "sk-bench-client"), ("anthropic-version", "2023-06-01"))


def body(*, stream: bool, turn: str, billing: int, small: bool = False) -> bytes:
    if small:
        return po.encode(po.small_body(stream=stream))
    request: dict[str, Any] = po.large_body(stream=stream, directive=turn)
    request["system"].insert(0, {"type": "text", "text": f"x-anthropic-billing-header: cc_version=2.1.332.{billing:x}; "
                                 "cc_entrypoint=cli;"})
    request["metadata"] = {"user_id": json.dumps({"device_id": "d" * 64, "session_id": f"s-{billing}"})}
    return po.encode(request)


FLOOR: Final = "bare hypercorn, the hit's request (the stack's floor)"


def measure(port: int, floor_port: int, *, rounds: int, warmup: int) -> dict[str, list[float]]:
    connection = po.Connection("127.0.0.1", port)
    floor = po.Connection("127.0.0.1", floor_port)
    samples: dict[str, list[float]] = {
        "hit": [], "miss": [], "hit, non-streaming": [], "hit, small request": [], "GET /health (the HTTP floor)": [],
        FLOOR: [],
    }
    size = len(body(stream=True, turn="", billing=0))
    counter = 0

    def once(kind: str) -> float:
        nonlocal counter
        counter += 1
        turn = "" if kind.startswith("hit") else f"(variant {counter})"
        request = po.raw_request("127.0.0.1", port, "/v1/messages?beta=true", HEADERS,
                                 body(stream=kind != "hit, non-streaming", turn=turn, billing=counter,
                                      small=kind == "hit, small request"))
        if kind.startswith("GET"):
            request = f"GET /health HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\n\r\n".encode()
        started = time.perf_counter()
        status = (floor if kind == FLOOR else connection).exchange(request)
        elapsed = (time.perf_counter() - started) * 1000
        if status != 200:
            raise RuntimeError(f"{kind}: lynkr answered {status}")
        return elapsed

    once("hit")  # the first of each is a miss that stores the answer the hits reuse
    once("hit, small request")
    time.sleep(0.2)  # its store is on disk
    for index in range(warmup + rounds):
        for kind in samples:
            elapsed = once(kind)
            if index >= warmup:
                samples[kind].append(elapsed)
    connection.close()
    floor.close()
    print(f"request body: {size} bytes", file=sys.stderr)
    return samples


def hits_and_misses(port: int) -> tuple[float, float]:
    text = po.urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    values = {line.split()[0]: float(line.split()[1]) for line in text.splitlines()
              if line.startswith("lynkr_prompt_cache_") and " " in line}
    return values["lynkr_prompt_cache_hits_total"], values["lynkr_prompt_cache_misses_total"]


def run(rounds: int, warmup: int, profile: Path | None) -> tuple[dict[str, list[float]], tuple[float, float], int]:
    with tempfile.TemporaryDirectory(prefix="lynkr-bench-cache-") as folder, ExitStack() as stack:
        scratch = Path(folder)
        fake_port, port, floor_port = po.free_port(), po.free_port(), po.free_port()
        stack.enter_context(po.started(
            "fake", [sys.executable, str(po.FAKE_SCRIPT), "--port", str(fake_port)], env=po.base_env(scratch),
            cwd=scratch, port=fake_port, health="/health", log=scratch / "fake.log"))
        env = po.lynkr_env(scratch, "cache", port, {
            "MODEL_PROVIDER": "anthropic", "ANTHROPIC_UPSTREAM_URL": f"http://127.0.0.1:{fake_port}/v1/messages",
            "ANTHROPIC_UPSTREAM_API_KEY": po.UPSTREAM_KEY})
        env["PROMPT_CACHE_ENABLED"] = "true"
        argv = [sys.executable, "-m", "lynkr", "serve"]
        if profile is not None:  # lynkr's trio thread under cProfile, stats written when it stops
            argv = [sys.executable, "-c", po.PROFILED_LYNKR.format(stats_file=str(profile.resolve()))]
        stack.enter_context(po.started(
            "lynkr", argv, env=env, cwd=po.REPO, port=port, health="/health",
            log=scratch / "lynkr.log"))
        stack.enter_context(po.started(
            "floor", [sys.executable, str(po.REPO / "bench" / "hypercorn_floor.py"), "--port", str(floor_port)],
            env={**po.base_env(scratch), "PYTHONPATH": str(po.REPO)}, cwd=po.REPO, port=floor_port, health="/health",
            log=scratch / "floor.log"))
        samples = measure(port, floor_port, rounds=rounds, warmup=warmup)
        counts = hits_and_misses(port)
        size = len(body(stream=True, turn="", billing=0))
    return samples, counts, size


def render(samples: dict[str, list[float]], counts: tuple[float, float], size: int, command: str) -> str:
    rounds = len(samples["hit"])
    hit_p50 = statistics.median(samples["hit"])
    lines = [
        "## Prompt cache",
        "",
        f"`{command}` ({date.today().isoformat()}, Python {platform.python_version()}, {os.cpu_count()} cores, "
        f"lynkr {po._git_rev()}, 1-minute load average {os.getloadavg()[0]:.2f} at the end). "
        f"A {size / 1000:.1f} kB Claude Code request, streaming, at concurrency 1, {rounds} requests of each kind "
        "alternating in one run against one `python -m lynkr serve` (`MODEL_PROVIDER=anthropic`) in front of "
        "`bench/fake_upstream.py`; whole exchange timed by the client. See the docstring of `bench/cache.py`.",
        "",
        "| request | p10 ms | p50 ms | p90 ms | p99 ms |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for kind, values in samples.items():
        lines.append(f"| {kind} | {po.percentile(values, 0.1):.3f} | {statistics.median(values):.3f} | "
                     f"{po.percentile(values, 0.9):.3f} | {po.percentile(values, 0.99):.3f} |")
    hits, misses = counts
    verdict = "met" if hit_p50 <= TARGET_HIT_P50_MS else "missed"
    lines += [
        "",
        f"Target: hit p50 <= {TARGET_HIT_P50_MS} ms: **{verdict}** ({hit_p50:.3f} ms). "
        f"lynkr counted {hits:.0f} hits and {misses:.0f} misses (`/metrics`).",
        "",
    ]
    return "\n".join(lines)


def write_section(path: Path, section: str) -> None:
    text = path.read_text()
    heading = "## Prompt cache\n"
    start = text.find(heading)
    if start == -1:
        text = text.rstrip("\n") + "\n\n" + section
    else:
        end = text.find("\n## ", start + len(heading))
        text = text[:start] + section + (text[end + 1:] if end != -1 else "")
    path.write_text(text)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=500, help="measured requests of each kind")
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--results", type=Path, help="replace the '## Prompt cache' section of this markdown file")
    parser.add_argument("--profile", type=Path, help="run lynkr under cProfile and write its stats here "
                        "(the figures are then not comparable)")
    args = parser.parse_args(argv)
    samples, counts, size = run(args.rounds, args.warmup, args.profile)
    command = "/work/main/.venv/bin/python bench/cache.py" + (f" --results {args.results}" if args.results else "")
    section = render(samples, counts, size, command)
    print(section)
    if args.results is not None:
        write_section(args.results, section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
