"""What recording the upstream's raw answer (``upstream.responded``) costs per 200-chunk stream.

    /work/main/.venv/bin/python bench/replay_recording.py

The streams are ``bench/proxy_overhead.py``'s: the fake upstream's 200-delta OpenAI chat and Anthropic SSE bodies
(``bench/fake_upstream.py``), one read per event, as the fake writes each in its own HTTP chunk.  Measured in
this process, CPU time per stream (median of rounds), for each format:

* **baseline**: what the live path already does with those reads: parse and convert each (the parser
  ``Conversion.parser()`` builds), and fold the events into the message the log keeps;
* **hot path, added**: what recording adds on the trio thread: keeping each read and each frame a streaming
  client is sent (a list append each), joining them once, the read sizes (packed), building the event, and the
  recorder's scrub of its payload (two known secrets);
* **worker thread, added**: what the store adds off the event loop: the blob's digest, zlib at level 6 (the
  blob database's packing) and encoding the record;
* the bytes the answer adds to the log: the packed blob plus the record.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.fake_upstream import anthropic_stream, openai_stream  # noqa: E402
from lynkr.events.codec import encode_all, payload_of  # noqa: E402
from lynkr.events.lmdb_store import _pack_blob  # noqa: E402
from lynkr.events.scrub import Scrubber  # noqa: E402
from lynkr.upstream.recording import UpstreamResponded, packed_sizes  # noqa: E402
from lynkr.wire.anthropic import MessageAssembler, message_as_logged  # noqa: E402
from lynkr.wire.sse import encode_events  # noqa: E402
from lynkr.wire.streams import Conversion  # noqa: E402

CHUNKS = 200
ROUNDS = 31
PER_ROUND = 50


def per_stream_us(work: Callable[[], object]) -> float:
    samples = []
    for _ in range(ROUNDS):
        started = time.process_time()
        for _ in range(PER_ROUND):
            work()
        samples.append((time.process_time() - started) / PER_ROUND * 1e6)
    return statistics.median(samples)


def main() -> int:
    scrubber = Scrubber(["upstream-secret-key-0042", "sk-ant-client-key-0099"])
    rows = []
    for name, reads, conversion in (
        ("OpenAI chat", list(openai_stream(CHUNKS, True)),
         Conversion(wire="openai", message_id="msg_bench", model="gpt-bench", input_tokens=12)),
        ("Anthropic SSE", list(anthropic_stream(CHUNKS)),
         Conversion(wire="anthropic", message_id="", model="claude-bench", input_tokens=0)),
    ):

        def baseline() -> object:
            parser = conversion.parser()
            assembler = MessageAssembler()
            for data in reads:
                for event in parser.feed(data):
                    assembler.feed(event)
            for event in parser.close():
                assembler.feed(event)
            return message_as_logged(assembler)

        def record() -> UpstreamResponded:
            kept: list[bytes] = []
            sent: list[bytes] = []
            keep, send = kept.append, sent.append
            for data, frame in zip(reads, frames):
                keep(data)
                send(frame)
            body = b"".join(kept)
            event = UpstreamResponded(
                request_id="req_bench", provider="bench", kind="openai", attempt=1, wire=conversion.wire,
                streamed=True, complete=True, message_id=conversion.message_id, model=conversion.model,
                input_tokens=conversion.input_tokens, tool_ids="standard", reads=packed_sizes(kept),
                size=len(body), body=body, sent=b"".join(sent),
            )
            scrubber.scrub(payload_of(event))
            return event

        # The client's frames: the upstream's own bytes for Anthropic SSE, the converted events framed otherwise.
        parser = conversion.parser()
        frames = reads if conversion.wire == "anthropic" else [encode_events(parser.feed(data)) for data in reads]

        event = record()

        def store() -> tuple[bytes, bytes]:
            form, blobs = event.stored_form()
            [encoded] = encode_all(1, [("sess-bench", form)])
            return b"".join(_pack_blob(blob) for blob in blobs.values()), encoded

        packed, encoded = store()
        rows.append((name, per_stream_us(baseline), per_stream_us(record), per_stream_us(store), event.size,
                     len(packed), len(encoded)))

    print(f"{CHUNKS}-chunk streams, CPU µs per stream, median of {ROUNDS} rounds of {PER_ROUND}; Python "
          f"{sys.version.split()[0]}")
    print()
    print("| stream | baseline: parse, convert, fold | hot path, added | added / baseline "
          "| worker thread, added | raw bytes | log bytes (blobs + record) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, base, hot, off, raw, blob, record in rows:
        print(f"| {name} | {base:,.0f} | {hot:,.1f} | {hot / base:.1%} | {off:,.0f} | {raw:,} | "
              f"{blob:,} + {record:,} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
