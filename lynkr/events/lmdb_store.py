"""The event log on LMDB, one environment in one directory.

Named databases:

* ``events``: 8-byte big-endian sequence number -> encoded record (see :mod:`lynkr.events.codec`).  Keys only
  grow, so every put is an append; LMDB answers an out-of-order append with False, which is checked.
* ``by_stream``: stream (utf-8) + ``b"\\x00"`` + 8-byte sequence number -> empty.  Replaying one session walks
  this index instead of the whole log.
* ``blobs``: digest -> the content-addressed parts of requests (see :mod:`lynkr.events.transcript`), each
  written in the transaction of the first record that refers to it.  A value is a format byte (0 plain,
  1 zlib) and the bytes.
* ``snapshots``: projection name -> a snapshot of its folded state (see :mod:`lynkr.events.snapshots`).  Derived
  data: deleting them all changes nothing but start-up time.
* ``meta``: ``layout`` -> the key layout version, so an older lynkr refuses a log laid out by a newer one.

All methods block; the daemon calls them from a worker thread.  A write transaction begins, puts and commits
inside one call, because LMDB binds write transactions to their thread.  Commits are synchronous, so a
returned ``append`` is on disk.

The memory map grows by doubling when it fills, and the batch is retried whole.  LMDB allows a resize only
while this process has no open transaction, so every transaction passes a :class:`_ResizeGate` and reads run
in short chunks instead of holding one transaction for a whole replay (a long-lived reader would also keep
LMDB from reusing freed pages).  Another process reading the same directory sees ``MapResizedError`` after a
resize; it adopts the new size and retries.
"""

from __future__ import annotations

import logging
import os
import struct
import threading
import time
import zlib
from collections.abc import Callable, Collection, Container, Iterator, Mapping, Sequence
from contextlib import contextmanager
from itertools import islice
from pathlib import Path
from types import TracebackType
from typing import Any

import lmdb
import msgpack  # type: ignore[import-untyped]

from lynkr.events.codec import PLAIN, TopicFilter, current_version, encode_all
from lynkr.events.records import Event, EventFromTheFuture, Payload, Recorded, UnknownEventType
from lynkr.events.store import SkippingDecoder, StoreStats, StreamSummary
from lynkr.events.transcript import MissingBlob

log = logging.getLogger("lynkr.events")

MiB = 1024 * 1024
LAYOUT_VERSION = 1
DEFAULT_MAX_READERS = 256  # read slots shared by the daemon's worker threads and CLI readers on the machine

_SEQ = struct.Struct(">Q")
_STREAM_END = b"\x00"
# Records decoded per read transaction: large enough to amortise the transaction, small enough that a
# resize waiting at the gate is not held up for long.
_READ_CHUNK = 2048


class LmdbEventStore:
    """An :class:`~lynkr.events.store.EventStore` in an LMDB environment; create with :meth:`open`."""

    def __init__(self, path: Path, env: lmdb.Environment, *, readonly: bool) -> None:
        self.path = path
        self._env = env
        self._readonly = readonly
        self._closed = False
        self._gate = _ResizeGate()
        self._decoder = SkippingDecoder(blobs=self)
        self._events = env.open_db(b"events", create=not readonly)
        self._by_stream = env.open_db(b"by_stream", create=not readonly)
        self._meta = env.open_db(b"meta", create=not readonly)
        self._blobs = env.open_db(b"blobs", create=not readonly)
        self._snapshots = env.open_db(b"snapshots", create=not readonly)

    @classmethod
    def open(
        cls,
        path: Path,
        *,
        map_size: int = 64 * MiB,
        readonly: bool = False,
        max_readers: int = DEFAULT_MAX_READERS,
    ) -> LmdbEventStore:
        """Open (and unless ``readonly``, create) the log in directory ``path``.

        ``map_size`` is where the memory map starts: LMDB maps an existing log at least as large as its
        data, and the map doubles whenever it fills.
        """
        if readonly:
            if not (path / "data.mdb").is_file():
                raise FileNotFoundError(f"no event log in {path}")
        else:
            path.mkdir(parents=True, exist_ok=True)
        env = lmdb.open(
            str(path),
            map_size=map_size,
            subdir=True,
            readonly=readonly,
            lock=True,
            sync=True,
            metasync=True,
            max_dbs=5,
            max_readers=max_readers,
        )
        try:
            store = cls(path, env, readonly=readonly)
            store._check_layout()
        except BaseException:
            env.close()
            raise
        return store

    def _check_layout(self) -> None:
        with self._transaction(write=not self._readonly) as txn:
            stored = txn.get(b"layout", db=self._meta)
            if stored is None:
                if not self._readonly:
                    txn.put(b"layout", str(LAYOUT_VERSION).encode(), db=self._meta)
                return
            layout = int(bytes(stored))  # copied inside the transaction: the view dies with it
        if layout > LAYOUT_VERSION:
            raise EventFromTheFuture(
                f"the event log in {self.path} has layout {layout}, but this lynkr knows only up to "
                f"layout {LAYOUT_VERSION}; upgrade lynkr to read it"
            )

    def __enter__(self) -> LmdbEventStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._closed = True
        self._env.close()

    # Writing

    def append(self, batch: Sequence[tuple[str, Event]], *, time_ns: int | None = None) -> list[int]:
        if not batch:
            return []
        stamp = time.time_ns() if time_ns is None else time_ns
        # Split and encode before the write transaction: less time holding LMDB's writer lock, and a payload
        # that cannot be encoded fails the batch before anything is written.
        stored: list[tuple[str, Event]] = []
        blobs: dict[bytes, bytes] = {}
        for stream, event in batch:
            form, carried = event.stored_form()
            stored.append((stream, form))
            blobs.update(carried)
        records = list(zip([_stream_prefix(stream) for stream, _ in batch], encode_all(stamp, stored)))
        while True:
            try:
                return self._write(records, blobs)
            except lmdb.MapFullError:
                self._grow_map()

    def _write(self, records: list[tuple[bytes, bytes]], blobs: dict[bytes, bytes]) -> list[int]:
        seqs: list[int] = []
        with self._transaction(write=True) as txn:
            for digest, blob in blobs.items():
                # A turn refers to every earlier message again; only the new ones are packed and written.
                if txn.get(digest, db=self._blobs) is None:
                    txn.put(digest, _pack_blob(blob), db=self._blobs)
            cursor = txn.cursor(db=self._events)
            seq = _SEQ.unpack(cursor.key())[0] if cursor.last() else 0
            for prefix, data in records:
                seq += 1
                key = _SEQ.pack(seq)
                if not txn.put(key, data, append=True, db=self._events):
                    raise RuntimeError(f"event log refused to append seq {seq}: its keys are out of order")
                txn.put(prefix + key, b"", db=self._by_stream)
                seqs.append(seq)
        return seqs

    def blob(self, digest: bytes) -> bytes | None:
        if self._closed:
            raise MissingBlob(
                f"the event log in {self.path} is closed; read request bodies while it is open, or keep "
                f"RequestReceived.whole()"
            )
        with self._transaction() as txn:
            stored = txn.get(digest, db=self._blobs)
            return None if stored is None else _unpack_blob(digest, stored)

    # Snapshots: bytes by name, interpreted by lynkr.events.snapshots.

    def save_snapshot(self, name: str, data: bytes) -> None:
        self._write_growing(lambda txn: txn.put(name.encode(), data, db=self._snapshots))

    def load_snapshot(self, name: str) -> bytes | None:
        with self._transaction() as txn:
            stored = txn.get(name.encode(), db=self._snapshots)
            return None if stored is None else bytes(stored)

    def delete_snapshots(self) -> None:
        self._write_growing(lambda txn: txn.drop(self._snapshots, delete=False))

    def _write_growing(self, write: Callable[[lmdb.Transaction[memoryview]], object]) -> None:
        """Run ``write`` in a write transaction, growing the map when it is full (even a delete needs pages)."""
        while True:
            try:
                with self._transaction(write=True) as txn:
                    write(txn)
                return
            except lmdb.MapFullError:
                self._grow_map()

    def _grow_map(self) -> None:
        with self._gate.resizing():
            old = self._env.info()["map_size"]
            self._env.set_mapsize(old * 2)
        log.info("event log map grew from %d to %d bytes", old, old * 2)

    def _adopt_map_size(self) -> None:
        """Another process grew the map: take its size (LMDB reads it from the file when given 0)."""
        with self._gate.resizing():
            self._env.set_mapsize(0)

    # Compaction: a copy of the log without some of its records, written into a fresh store.

    def copy_into(
        self,
        target: LmdbEventStore,
        *,
        drop: Container[int],
        add: Mapping[int, tuple[str, bytes]],
        drop_blobs: Container[bytes],
        progress: Callable[[int, int], None] | None = None,
    ) -> None:
        """Write this log into the empty ``target``: every record but those in ``drop``, at its own sequence
        number; the encoded records of ``add`` (seq -> (stream, record)) at theirs; every blob but those in
        ``drop_blobs``.  Snapshots are not copied: they are rebuilt from the new log.  ``progress(done, total)``
        counts sequence numbers.
        """
        total = self.last_seq()
        added = sorted(add.items())
        next_added = 0
        batch: list[tuple[bytes, bytes]] = []
        for seq, data in self.read_raw():
            while next_added < len(added) and added[next_added][0] < seq:
                batch.append((_SEQ.pack(added[next_added][0]), added[next_added][1][1]))
                next_added += 1
            if seq not in drop:
                batch.append((_SEQ.pack(seq), data))
            if len(batch) >= _READ_CHUNK:
                target._put_all(target._events, batch, append=True)
                batch = []
                if progress is not None:
                    progress(seq, total)
        batch.extend((_SEQ.pack(seq), record) for seq, (_, record) in added[next_added:])
        target._put_all(target._events, batch, append=True)
        stream_keys = [
            (_stream_prefix(stream) + _SEQ.pack(seq), b"") for seq, (stream, _) in added
        ]
        for key, _ in self._items(self._by_stream):
            if int.from_bytes(key[-8:], "big") not in drop:
                stream_keys.append((key, b""))
            if len(stream_keys) >= _READ_CHUNK:
                target._put_all(target._by_stream, stream_keys)
                stream_keys = []
        target._put_all(target._by_stream, stream_keys)
        blobs: list[tuple[bytes, bytes]] = []
        for digest, stored in self._items(self._blobs):
            if digest not in drop_blobs:
                blobs.append((digest, stored))
            if len(blobs) >= _READ_CHUNK:
                target._put_all(target._blobs, blobs)
                blobs = []
        target._put_all(target._blobs, blobs)
        if progress is not None:
            progress(total, total)

    def _items(self, db: lmdb._Database) -> Iterator[tuple[bytes, bytes]]:
        """Every key and value of ``db``, copied, read in short transactions."""
        after: bytes | None = None
        while True:
            chunk: list[tuple[bytes, bytes]] = []
            with self._transaction() as txn:
                cursor = txn.cursor(db=db)
                found = cursor.first() if after is None else cursor.set_range(after)
                if found and after is not None and bytes(cursor.key()) == after:
                    found = cursor.next()
                while found and len(chunk) < _READ_CHUNK:
                    chunk.append((bytes(cursor.key()), bytes(cursor.value())))
                    found = cursor.next()
            yield from chunk
            if len(chunk) < _READ_CHUNK:
                return
            after = chunk[-1][0]

    def _put_all(self, db: lmdb._Database, items: list[tuple[bytes, bytes]], *, append: bool = False) -> None:
        def write(txn: lmdb.Transaction[memoryview]) -> None:
            for key, value in items:
                if not txn.put(key, value, append=append, db=db):
                    raise RuntimeError(f"the log copy refused key {key.hex()}: its keys are out of order")

        if items:
            self._write_growing(write)

    # Reading

    def last_seq(self) -> int:
        with self._transaction() as txn:
            cursor = txn.cursor(db=self._events)
            return int(_SEQ.unpack(cursor.key())[0]) if cursor.last() else 0

    def read(
        self, start: int = 1, *, stream: str | None = None, topics: Collection[str] | None = None
    ) -> Iterator[Recorded]:
        # Decoding lazily from copied bytes, rather than a chunk at a time inside the transaction, keeps
        # few decoded objects alive at once; holding thousands makes the garbage collector cost ~40%.
        decode = self._decoder.decode
        admits = None if topics is None else TopicFilter(topics).admits
        for chunk in self._chunks(start, stream, admits):
            for seq, data in chunk:
                recorded = decode(seq, data)
                if recorded is not None:
                    yield recorded

    def read_payloads(
        self, start: int = 1, *, stream: str | None = None, topics: Collection[str] | None = None
    ) -> Iterator[tuple[int, int, str, str, Payload]]:
        if stream is not None:
            decode = self._decoder.decode_payload
            admits = None if topics is None else TopicFilter(topics).admits
            for chunk in self._chunks(start, stream, admits):
                for seq, data in chunk:
                    fields = decode(seq, data)
                    if fields is not None:
                        yield fields
            return
        reader = _PayloadReader(topics, self._decoder.decode_payload)
        next_seq: int | None = max(start, 1)
        while next_seq is not None:
            # Copied out in one call per chunk (values as bytes), then decoded one by one outside the
            # transaction: a payload is folded while its memory is still in the CPU's cache.
            with self._transaction(buffers=False) as txn:
                cursor = txn.cursor(db=self._events)
                if not cursor.set_range(_SEQ.pack(next_seq)):
                    return
                pairs: list[tuple[bytes, bytes]] = list(islice(cursor, _READ_CHUNK))
            next_seq = int.from_bytes(pairs[-1][0], "big") + 1 if len(pairs) == _READ_CHUNK else None
            yield from reader.decoded(pairs)

    def read_raw(self, start: int = 1, *, stream: str | None = None) -> Iterator[tuple[int, bytes]]:
        for chunk in self._chunks(start, stream, None):
            yield from chunk

    def _chunks(
        self, start: int, stream: str | None, admits: Callable[[memoryview], bool] | None
    ) -> Iterator[list[tuple[int, bytes]]]:
        next_seq: int | None = max(start, 1)
        while next_seq is not None:
            if stream is None:
                chunk, next_seq = self._log_chunk(next_seq, admits)
            else:
                chunk, next_seq = self._stream_chunk(_stream_prefix(stream), next_seq, admits)
            yield chunk

    # Each chunk is read in its own short transaction and copied out of the map (views into it are valid
    # only inside the transaction); the second value is where the next chunk starts, None at the end.
    # ``admits`` turns records down before they are copied.

    def _log_chunk(
        self, start: int, admits: Callable[[memoryview], bool] | None
    ) -> tuple[list[tuple[int, bytes]], int | None]:
        chunk: list[tuple[int, bytes]] = []
        with self._transaction() as txn:
            cursor = txn.cursor(db=self._events)
            if not cursor.set_range(_SEQ.pack(start)):
                return chunk, None
            scanned = 0
            for key, data in cursor:
                scanned += 1
                if admits is None or admits(data):
                    chunk.append((int.from_bytes(key, "big"), bytes(data)))
                if scanned == _READ_CHUNK:
                    return chunk, int.from_bytes(key, "big") + 1
        return chunk, None

    def _stream_chunk(
        self, prefix: bytes, start: int, admits: Callable[[memoryview], bool] | None
    ) -> tuple[list[tuple[int, bytes]], int | None]:
        chunk: list[tuple[int, bytes]] = []
        skip = len(prefix)
        with self._transaction() as txn:
            cursor = txn.cursor(db=self._by_stream)
            if not cursor.set_range(prefix + _SEQ.pack(start)):
                return chunk, None
            scanned = 0
            for key in cursor.iternext(values=False):
                if key[:skip] != prefix:
                    return chunk, None
                seq_key = key[skip:]
                seq = int.from_bytes(seq_key, "big")
                data = txn.get(seq_key, db=self._events)
                if data is None:
                    log.warning("stream index points at missing record %d; skipping it", seq)
                elif admits is None or admits(data):
                    chunk.append((seq, bytes(data)))
                scanned += 1
                if scanned == _READ_CHUNK:
                    return chunk, seq + 1
        return chunk, None

    def iter_streams(self) -> Iterator[StreamSummary]:
        summaries: list[StreamSummary] = []
        with self._transaction() as txn:
            current: bytes | None = None
            count = first = last = 0
            for key in txn.cursor(db=self._by_stream).iternext(values=False):
                stream, seq = bytes(key[:-9]), int.from_bytes(key[-8:], "big")
                if stream != current:
                    if current is not None:
                        summaries.append(_summary(current, count, first, last))
                    current, count, first = stream, 0, seq
                count += 1
                last = seq
            if current is not None:
                summaries.append(_summary(current, count, first, last))
        return iter(summaries)

    def stats(self) -> StoreStats:
        with self._transaction() as txn:
            events = txn.stat(self._events)["entries"]
            cursor = txn.cursor(db=self._events)
            last_seq = int(_SEQ.unpack(cursor.key())[0]) if cursor.last() else 0
        info = self._env.info()
        page_size = self._env.stat()["psize"]
        return StoreStats(
            events=events,
            last_seq=last_seq,
            bytes_used=(info["last_pgno"] + 1) * page_size,
            bytes_on_disk=os.path.getsize(self.path / "data.mdb"),
            map_size=info["map_size"],
            skipped_corrupt=self._decoder.skipped_corrupt,
            skipped_unknown=self._decoder.skipped_unknown,
        )

    @contextmanager
    def _transaction(self, *, write: bool = False, buffers: bool = True) -> Iterator[lmdb.Transaction[Any]]:
        """A transaction that commits on success; readers adopt a map another process has grown.

        ``buffers=False`` hands out values as bytes (copied) rather than views into the map.
        """
        while True:
            with self._gate.transaction():
                try:
                    txn: lmdb.Transaction[Any] = (
                        self._env.begin(write=write, buffers=True) if buffers else self._env.begin(write=write)
                    )
                except lmdb.MapResizedError:
                    pass
                else:
                    # buffers=True: values are views into the map, copied only where they must outlive it.
                    with txn:
                        yield txn
                    return
            self._adopt_map_size()


class _PayloadReader:
    """Decodes a chunk of the log into ``(seq, time_ns, topic, stream, payload)`` tuples in one tight loop.

    A full rebuild spends most of its time here, so the common record (plain, intact, of a known topic at its
    current version) is read inline, without a call per record: its topic read from the raw bytes and judged
    once per topic (wanted, passed over, or unknown here), its checksum checked, its body unpacked.  Anything
    else (compressed, corrupt, unknown, older, from the future, or a topic too long for the inline read) takes
    the general path through ``decode``, which skips and counts exactly as :meth:`LmdbEventStore.read` does.
    """

    def __init__(
        self, topics: Collection[str] | None, decode: Callable[[int, bytes], tuple[int, int, str, str, Payload] | None]
    ) -> None:
        self._wanted = None if topics is None else frozenset(topics)
        self._admits = None if topics is None else TopicFilter(topics).admits
        self._decode = decode
        # Per raw topic: (topic, current version) to read, or _PASS_OVER when not wanted, _UNKNOWN when unknown here.
        self._verdicts: dict[bytes, tuple[str, int]] = {}

    def decoded(self, pairs: list[tuple[bytes, bytes]]) -> Iterator[tuple[int, int, str, str, Payload]]:
        """The records of ``(key, stored bytes)`` pairs that are to be read, decoded."""
        # Everything the loop touches is a local: a global or attribute lookup per record shows in a rebuild.
        verdicts, judge, unjudged, pass_over, unknown = self._verdicts, self._judge, _UNJUDGED, _PASS_OVER, _UNKNOWN
        crc32, unpackb, unpack_header, from_bytes = zlib.crc32, _unpackb, _unpack_header, int.from_bytes
        plain, fixarray_5, fixstr, fixstr_last = PLAIN, _FIXARRAY_5, _FIXSTR, _FIXSTR_LAST
        for key, data in pairs:
            marker = data[6] if len(data) > 7 and data[0] == plain and data[5] == fixarray_5 else 0
            if fixstr <= marker <= fixstr_last:
                raw_topic = data[7 : 7 + marker - fixstr]
                verdict = verdicts.get(raw_topic, unjudged)
                if verdict is unjudged:
                    verdict = judge(raw_topic)
                if verdict is pass_over:
                    if crc32(data[5:]) == unpack_header(data)[1]:
                        continue
                elif verdict is not unknown:
                    body = data[5:]
                    if crc32(body) == unpack_header(data)[1]:
                        try:
                            fields = unpackb(body)
                        except (ValueError, msgpack.UnpackException):
                            fields = None
                        if type(fields) is list and len(fields) == 5:
                            _, version, time_ns, stream, payload = fields
                            topic, current = verdict
                            if (
                                version == current
                                and type(time_ns) is int
                                and type(stream) is str
                                and type(payload) is dict
                            ):
                                yield from_bytes(key, "big"), time_ns, topic, stream, payload
                                continue
            # The general path: filtered and decoded exactly as read() would, skips counted.
            if self._admits is None or self._admits(data):
                found = self._decode(from_bytes(key, "big"), data)
                if found is not None:
                    yield found

    def _judge(self, raw_topic: bytes) -> tuple[str, int]:
        verdict: tuple[str, int]
        try:
            topic = raw_topic.decode()
            current = current_version(topic)
        except (UnicodeDecodeError, UnknownEventType):
            verdict = _UNKNOWN
        else:
            verdict = (topic, current) if self._wanted is None or topic in self._wanted else _PASS_OVER
        if len(self._verdicts) < _VERDICTS_KEPT:
            self._verdicts[raw_topic] = verdict
        return verdict


# Verdicts told apart by identity.
_UNJUDGED = ("", -1)
_PASS_OVER = ("", -2)
_UNKNOWN = ("", -3)
_VERDICTS_KEPT = 1024
_FIXARRAY_5 = 0x95
_FIXSTR, _FIXSTR_LAST = 0xA0, 0xBF
_unpack_header = struct.Struct(">BI").unpack_from
_unpackb = msgpack.unpackb


_PLAIN_BLOB, _ZLIB_BLOB = b"\x00", b"\x01"
_COMPRESS_BLOB_MIN = 512


def _pack_blob(blob: bytes) -> bytes:
    if len(blob) >= _COMPRESS_BLOB_MIN:
        packed = zlib.compress(blob, 6)
        if len(packed) * 5 <= len(blob) * 4:
            return _ZLIB_BLOB + packed
    return _PLAIN_BLOB + blob


def _unpack_blob(digest: bytes, stored: memoryview) -> bytes | None:
    if stored[:1] == _ZLIB_BLOB:
        try:
            return zlib.decompress(stored[1:])
        except zlib.error:
            log.warning("blob %s does not inflate; treating it as missing", digest.hex())
            return None
    return bytes(stored[1:])


def _stream_prefix(stream: str) -> bytes:
    if _STREAM_END.decode() in stream:
        raise ValueError(f"stream id {stream!r} contains a NUL character")
    return stream.encode() + _STREAM_END


def _summary(stream: bytes, count: int, first: int, last: int) -> StreamSummary:
    return StreamSummary(stream=stream.decode(), events=count, first_seq=first, last_seq=last)


class _ResizeGate:
    """Many transactions at once, or one map resize alone: LMDB resizes only with no transaction open.

    A waiting resize holds back new transactions, so a steady stream of readers cannot starve it.
    """

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._open = 0
        self._resizes_wanted = 0
        self._resizing = False

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self._condition:
            while self._resizes_wanted:
                self._condition.wait()
            self._open += 1
        try:
            yield
        finally:
            with self._condition:
                self._open -= 1
                if not self._open:
                    self._condition.notify_all()

    @contextmanager
    def resizing(self) -> Iterator[None]:
        with self._condition:
            self._resizes_wanted += 1
            while self._open or self._resizing:
                self._condition.wait()
            self._resizing = True
        try:
            yield
        finally:
            with self._condition:
                self._resizing = False
                self._resizes_wanted -= 1
                self._condition.notify_all()
