from __future__ import annotations

import logging
import subprocess
import sys
import threading
from pathlib import Path

import lmdb
import pytest

from lynkr.events.catalog import DaemonStopped, UpstreamAttempted
from lynkr.events.codec import encode, encode_payload
from lynkr.events.lmdb_store import LmdbEventStore
from lynkr.events.records import EventFromTheFuture
from tests.eventstore_conformance import EventStoreConformance, attempted, stopped

REPO = Path(__file__).resolve().parent.parent
KiB = 1024


class TestLmdbEventStoreConformance(EventStoreConformance):
    def open_store(self, path: Path) -> LmdbEventStore:
        return LmdbEventStore.open(path, map_size=256 * KiB)


def put_raw(path: Path, seq: int, data: bytes) -> None:
    """Write bytes under a key of the events database, the way a damaged disk would."""
    env = lmdb.open(str(path), max_dbs=3)
    try:
        with env.begin(write=True) as txn:
            txn.put(seq.to_bytes(8, "big"), data, db=env.open_db(b"events", txn=txn))
    finally:
        env.close()


def big_event(n: int) -> UpstreamAttempted:
    return UpstreamAttempted(
        request_id=f"req_{n}",
        provider="ollama",
        attempt=1,
        status=500,
        latency_ms=1.0,
        error="upstream said: " + "x" * 400,
        will_retry=True,
    )


def test_corrupt_record_is_skipped_counted_and_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "log"
    with LmdbEventStore.open(path) as store:
        store.append([("s", stopped("one")), ("s", stopped("two")), ("s", stopped("three"))])
    put_raw(path, 2, b"\x01garbage that is not a record")
    with LmdbEventStore.open(path) as store, caplog.at_level(logging.WARNING, logger="lynkr.events"):
        assert [r.event for r in store.read()] == [stopped("one"), stopped("three")]
        assert store.stats().skipped_corrupt == 1
        assert store.stats().skipped_unknown == 0
    assert "record 2" in caplog.text


def test_record_with_bad_checksum_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "log"
    with LmdbEventStore.open(path) as store:
        store.append([("s", stopped("one")), ("s", stopped("two"))])
    damaged = bytearray(encode(1, "s", stopped("two")))
    damaged[-1] ^= 0xFF
    put_raw(path, 2, bytes(damaged))
    with LmdbEventStore.open(path) as store:
        assert [r.seq for r in store.read()] == [1]
        assert store.stats().skipped_corrupt == 1


def test_unknown_event_type_is_skipped_and_counted(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "log"
    with LmdbEventStore.open(path) as store:
        store.append([("s", stopped("one"))])
    put_raw(path, 2, encode_payload(1, "s", "plugin.removed_since", 1, {"x": 1}))
    with LmdbEventStore.open(path) as store:
        store.append([("s", stopped("three"))])
        with caplog.at_level(logging.WARNING, logger="lynkr.events"):
            assert [r.seq for r in store.read()] == [1, 3]
        assert store.stats().skipped_unknown == 1
    assert "plugin.removed_since" in caplog.text


def test_record_from_a_newer_lynkr_stops_the_read(tmp_path: Path) -> None:
    path = tmp_path / "log"
    with LmdbEventStore.open(path) as store:
        store.append([("s", stopped("one"))])
    put_raw(path, 2, encode_payload(1, "s", DaemonStopped.TYPE, DaemonStopped.VERSION + 1, {"reason": "x"}))
    with LmdbEventStore.open(path) as store:
        with pytest.raises(EventFromTheFuture, match="upgrade lynkr"):
            list(store.read())


def test_log_laid_out_by_a_newer_lynkr_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "log"
    LmdbEventStore.open(path).close()
    env = lmdb.open(str(path), max_dbs=3)
    with env.begin(write=True) as txn:
        txn.put(b"layout", b"2", db=env.open_db(b"meta", txn=txn))
    env.close()
    with pytest.raises(EventFromTheFuture, match="layout 2"):
        LmdbEventStore.open(path)


def test_map_grows_from_a_tiny_size_and_keeps_every_event(tmp_path: Path) -> None:
    with LmdbEventStore.open(tmp_path / "log", map_size=64 * KiB) as store:
        for start in range(0, 3000, 100):
            store.append([("s", big_event(n)) for n in range(start, start + 100)])
        stats = store.stats()
        assert stats.map_size > 64 * KiB
        assert stats.events == 3000
        assert [r.seq for r in store.read()] == list(range(1, 3001))


def test_reopening_a_grown_log_with_a_small_map_size_still_reads_and_appends(tmp_path: Path) -> None:
    with LmdbEventStore.open(tmp_path / "log", map_size=64 * KiB) as store:
        store.append([("s", big_event(n)) for n in range(1000)])
        used = store.stats().bytes_used
    with LmdbEventStore.open(tmp_path / "log", map_size=64 * KiB) as store:
        assert store.stats().map_size >= used  # LMDB never maps less than the data
        assert sum(1 for _ in store.read()) == 1000
        assert store.append([("s", big_event(n)) for n in range(1000)])[-1] == 2000


def test_reader_thread_survives_map_growth_in_the_same_process(tmp_path: Path) -> None:
    errors: list[BaseException] = []
    done = threading.Event()
    with LmdbEventStore.open(tmp_path / "log", map_size=64 * KiB) as store:

        def keep_reading() -> None:
            try:
                while not done.is_set():
                    seqs = [r.seq for r in store.read()]
                    assert seqs == list(range(1, len(seqs) + 1))
            except BaseException as error:
                errors.append(error)

        reader = threading.Thread(target=keep_reading)
        reader.start()
        try:
            for start in range(0, 2000, 50):
                store.append([("s", big_event(n)) for n in range(start, start + 50)])
        finally:
            done.set()
            reader.join()
        assert errors == []
        assert store.stats().map_size > 64 * KiB


_TAILING_READER = """
import sys, time
from pathlib import Path
from lynkr.events.lmdb_store import LmdbEventStore

path, target = Path(sys.argv[1]), int(sys.argv[2])
store = LmdbEventStore.open(path, readonly=True, map_size=64 * 1024)
seen, map_sizes = 0, {store.stats().map_size}
print("ready", flush=True)
deadline = time.monotonic() + 30
while seen < target and time.monotonic() < deadline:
    if store.last_seq() > seen:
        for recorded in store.read(seen + 1):
            assert recorded.seq == seen + 1, (recorded.seq, seen)
            seen = recorded.seq
        map_sizes.add(store.stats().map_size)
    else:
        time.sleep(0.001)
print(seen, len(map_sizes))
"""


def test_reader_in_another_process_tails_the_log_across_map_growth(tmp_path: Path) -> None:
    path = tmp_path / "log"
    total = 3000
    with LmdbEventStore.open(path, map_size=64 * KiB) as store:
        store.append([("s", big_event(0))])
        reader = subprocess.Popen(
            [sys.executable, "-c", _TAILING_READER, str(path), str(total)],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert reader.stdout is not None
        assert reader.stdout.readline() == "ready\n"
        for start in range(1, total, 40):
            store.append([("s", big_event(n)) for n in range(start, min(start + 40, total))])
        out, err = reader.communicate(timeout=60)
    assert reader.returncode == 0, err
    seen, map_sizes = (int(word) for word in out.split())
    assert seen == total
    assert map_sizes > 1  # the reader adopted at least one resize made by the writer


def test_readonly_open_of_a_missing_log_says_so(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no event log"):
        LmdbEventStore.open(tmp_path / "nowhere", readonly=True)


def test_stream_ids_with_nul_are_refused(tmp_path: Path) -> None:
    with LmdbEventStore.open(tmp_path / "log") as store:
        with pytest.raises(ValueError, match="NUL"):
            store.append([("a\x00b", stopped("x"))])
        assert store.last_seq() == 0


def test_read_by_stream_uses_the_index_not_a_scan(tmp_path: Path) -> None:
    path = tmp_path / "log"
    with LmdbEventStore.open(path) as store:
        store.append([("wanted", attempted("req_1")), ("other", attempted("req_2"))])
    # Damage the other stream's record: reading "wanted" never touches it.
    put_raw(path, 2, b"junk")
    with LmdbEventStore.open(path) as store:
        assert [r.seq for r in store.read(stream="wanted")] == [1]
        assert store.stats().skipped_corrupt == 0


def test_read_payloads_reads_every_kind_of_record_as_read_does(tmp_path: Path) -> None:
    """Plain and compressed records, a damaged one of a wanted topic and of a topic passed over, an unknown
    topic, an older version that needs its upcaster, and more records than one read chunk holds: the inline
    path of read_payloads must agree with read, record for record and skip for skip."""
    from lynkr.events.codec import payload_of
    from lynkr.events.lmdb_store import _READ_CHUNK

    path = tmp_path / "log"
    with LmdbEventStore.open(path, map_size=4096 * KiB) as store:
        store.append([("s", stopped(str(n))) for n in range(_READ_CHUNK + 5)])
        store.append([("a", attempted("r1")), ("b", big_event(1)), ("s", stopped("x")), ("a", attempted("r2"))])
        store.append([("s", stopped("y")), ("s", stopped("old"))])
        last = store.last_seq()
    damaged_wanted = bytearray(encode(1, "s", stopped("torn")))
    damaged_wanted[-1] ^= 0xFF
    damaged_passed_over = bytearray(encode(1, "a", attempted("torn")))
    damaged_passed_over[-1] ^= 0xFF
    put_raw(path, 3, bytes(damaged_wanted))
    put_raw(path, last - 4, bytes(damaged_passed_over))
    put_raw(path, last - 1, encode_payload(1, "s", "plugin.removed_since", 1, {"x": 1}))
    put_raw(path, last, encode_payload(1, "q", "request.received", 2, {
        "request_id": "r", "session_id": "q", "path": "/v1/messages", "model": "m", "stream": False,
        "headers": {}, "messages": 1, "tools": [], "last_user_text": "hi", "body": b"{}",
    }))
    for topics in (None, {"daemon.stopped", "request.received"}, {"upstream.attempted"}):
        with LmdbEventStore.open(path) as store:
            expected = [
                (r.seq, r.time_ns, r.event.TYPE, r.stream, payload_of(r.event)) for r in store.read(topics=topics)
            ]
            read_skips = (store.stats().skipped_corrupt, store.stats().skipped_unknown)
        with LmdbEventStore.open(path) as store:
            found = list(store.read_payloads(topics=topics))
            assert (store.stats().skipped_corrupt, store.stats().skipped_unknown) == read_skips
        # A request's payload keeps its template and parts; compare what read's event was built from.
        assert [f[:4] for f in found] == [e[:4] for e in expected]
        assert [f[4] for f in found if f[2] != "request.received"] == [
            e[4] for e in expected if e[2] != "request.received"
        ]
        if topics is None or "request.received" in topics:
            assert found[-1][4]["template"] == b"{}" and found[-1][4]["last_user_text"] == "hi"
    # Even when only upstream.attempted is read, the damaged and the unknown records are counted.
    assert read_skips == (2, 1)
