"""The index's LMDB environment: derived state, kept apart from the event log.

It lives in ``<data_dir>/index``, its own environment, not named databases inside the log's: LMDB has one
writer per environment, so a big re-index batch never holds the lock the recorder needs to append events.
It is derived state, so it is written without fsync (a crash loses at most the newest batches, which the
next start's hash check puts back) and a damaged one is simply deleted and rebuilt.

Named databases:

``files``    path -> the file's record: content hash, size, mtime, language, counts, or the reason it was skipped
``facts``    path -> its definitions, references and imports (msgpack)
``changes``  generation -> the paths that changed in it, so a reader catches up without reloading everything
``meta``     ``generation``, ``layout``, ``project`` (manifest facts), ``last_run``

Every write transaction bumps ``generation`` by one.
"""

from __future__ import annotations

import shutil
import struct
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import attrs
import lmdb
import msgpack  # type: ignore[import-untyped]

from lynkr.index.facts import FileFacts

LAYOUT = 1
CHANGES_KEPT = 4096  # generations of change lists a reader can catch up through; further behind, it reloads
_GENERATION = struct.Struct(">Q")
MAX_KEY_BYTES = 500  # LMDB's default key limit is 511 bytes


def index_dir(data_dir: Path) -> Path:
    return data_dir / "index"


@attrs.frozen(kw_only=True)
class FileRecord:
    """What the index remembers of one file without its facts."""

    path: str
    content_hash: bytes
    size: int
    mtime_ns: int
    language: str
    definitions: int = 0
    references: int = 0
    skipped: str = ""  # the reason, for a file that was looked at and not indexed

    def pack(self) -> bytes:
        packed: bytes = msgpack.packb(
            [self.content_hash, self.size, self.mtime_ns, self.language, self.definitions, self.references,
             self.skipped]
        )
        return packed

    @classmethod
    def unpack(cls, path: str, data: bytes | memoryview) -> FileRecord:
        content_hash, size, mtime_ns, language, definitions, references, skipped = msgpack.unpackb(data)
        return cls(path=path, content_hash=content_hash, size=size, mtime_ns=mtime_ns, language=language,
                   definitions=definitions, references=references, skipped=skipped)


@attrs.frozen(kw_only=True)
class Update:
    """One file's new state: its record, and its facts when it was parsed (None: skipped)."""

    record: FileRecord
    facts: FileFacts | None
    keep_facts: bool = False  # the bytes did not change: only the record (its stat) is rewritten


class IndexStore:
    """The environment, its databases, and the reads and writes everyone shares.

    Writes happen on one thread at a time (LMDB binds a write transaction to its thread); callers run
    :meth:`write` inside one ``trio.to_thread.run_sync`` call.
    """

    def __init__(self, path: Path, env: lmdb.Environment, *, readonly: bool) -> None:
        self.path = path
        self.readonly = readonly
        self._env = env
        self._files = env.open_db(b"files", create=not readonly)
        self._facts = env.open_db(b"facts", create=not readonly)
        self._changes = env.open_db(b"changes", create=not readonly)
        self._meta = env.open_db(b"meta", create=not readonly)
        self._resize = threading.Lock()

    @classmethod
    def open(cls, data_dir: Path, *, readonly: bool = False, map_size: int = 1 << 32) -> IndexStore:
        """Open the index under ``data_dir``; a damaged or newer-layout index is deleted and rebuilt."""
        path = index_dir(data_dir)
        if readonly and not (path / "data.mdb").is_file():
            raise FileNotFoundError(f"no index in {path}; start the daemon or run `lynkr index rebuild`")
        try:
            return cls._open(path, readonly=readonly, map_size=map_size)
        except (lmdb.Error, ValueError, msgpack.UnpackException):
            if readonly:
                raise
            shutil.rmtree(path, ignore_errors=True)
            return cls._open(path, readonly=False, map_size=map_size)

    @classmethod
    def _open(cls, path: Path, *, readonly: bool, map_size: int) -> IndexStore:
        path.mkdir(parents=True, exist_ok=True)
        env = lmdb.open(str(path), map_size=map_size, subdir=True, readonly=readonly, lock=True, sync=False,
                        metasync=False, max_dbs=4)
        try:
            store = cls(path, env, readonly=readonly)
            layout = store.meta("layout")
            if layout is None and not readonly:
                with store._write() as txn:
                    txn.put(b"layout", msgpack.packb(LAYOUT), db=store._meta)
            elif layout is not None and layout != LAYOUT:
                raise ValueError(f"index layout {layout} is not {LAYOUT}")
        except BaseException:
            env.close()
            raise
        return store

    def close(self) -> None:
        self._env.close()

    # Writing

    def write(self, updates: Iterable[Update], removed: Iterable[str] = (), *, meta: Mapping[str, Any] | None = None
              ) -> int:
        """Apply a batch in one transaction and return the new generation."""
        updates, removed = list(updates), list(removed)
        while True:
            try:
                return self._write_batch(updates, removed, meta or {})
            except lmdb.MapFullError:
                with self._resize:
                    self._env.set_mapsize(self._env.info()["map_size"] * 2)

    def _write_batch(self, updates: list[Update], removed: list[str], meta: Mapping[str, Any]) -> int:
        with self._write() as txn:
            generation = self._generation(txn) + 1
            changed: list[str] = []
            for update in updates:
                key = update.record.path.encode()
                txn.put(key, update.record.pack(), db=self._files)
                if update.keep_facts:
                    continue  # readers hold these facts already: not a change for them
                if update.facts is not None:
                    txn.put(key, msgpack.packb(update.facts.pack()), db=self._facts)
                else:
                    txn.delete(key, db=self._facts)
                changed.append(update.record.path)
            for path in removed:
                key = path.encode()
                txn.delete(key, db=self._files)
                txn.delete(key, db=self._facts)
                changed.append(path)
            for name, value in meta.items():
                txn.put(name.encode(), msgpack.packb(value), db=self._meta)
            txn.put(b"generation", msgpack.packb(generation), db=self._meta)
            txn.put(_GENERATION.pack(generation), msgpack.packb(changed), db=self._changes)
            if generation > CHANGES_KEPT:
                txn.delete(_GENERATION.pack(generation - CHANGES_KEPT), db=self._changes)
            return generation

    @contextmanager
    def _write(self) -> Iterator[lmdb.Transaction]:
        with self._env.begin(write=True) as txn:
            yield txn

    @contextmanager
    def read(self) -> Iterator[lmdb.Transaction]:
        """A read transaction; a map another process grew is adopted first."""
        try:
            txn = self._env.begin()
        except lmdb.MapResizedError:
            with self._resize:
                self._env.set_mapsize(0)
            txn = self._env.begin()
        with txn:
            yield txn

    # Reading

    @staticmethod
    def _generation_in(txn: lmdb.Transaction, meta: Any) -> int:
        raw = txn.get(b"generation", db=meta)
        return 0 if raw is None else int(msgpack.unpackb(raw))

    def _generation(self, txn: lmdb.Transaction) -> int:
        return self._generation_in(txn, self._meta)

    def generation(self) -> int:
        with self.read() as txn:
            return self._generation(txn)

    def meta(self, name: str) -> Any:
        with self.read() as txn:
            raw = txn.get(name.encode(), db=self._meta)
            return None if raw is None else msgpack.unpackb(raw)

    def records(self) -> dict[str, FileRecord]:
        with self.read() as txn:
            return {
                bytes(key).decode(): FileRecord.unpack(bytes(key).decode(), value)
                for key, value in txn.cursor(db=self._files)
            }

    def record(self, path: str) -> FileRecord | None:
        with self.read() as txn:
            raw = txn.get(path.encode(), db=self._files)
            return None if raw is None else FileRecord.unpack(path, raw)

    def facts(self, paths: Iterable[str] | None = None) -> Iterator[FileFacts]:
        """The facts of ``paths`` (all files when None); paths with none are left out."""
        with self.read() as txn:
            if paths is None:
                for key, value in txn.cursor(db=self._facts):
                    path = bytes(key).decode()
                    yield FileFacts.unpack(path, msgpack.unpackb(value))
                return
            for path in paths:
                raw = txn.get(path.encode(), db=self._facts)
                if raw is not None:
                    yield FileFacts.unpack(path, msgpack.unpackb(raw))

    def packed_facts(self, paths: Iterable[str] | None = None) -> Iterator[tuple[str, dict[str, Any]]]:
        """Like :meth:`facts`, but as the stored maps: loading the whole index skips building references."""
        with self.read() as txn:
            if paths is None:
                for key, value in txn.cursor(db=self._facts):
                    yield bytes(key).decode(), msgpack.unpackb(value)
                return
            for path in paths:
                raw = txn.get(path.encode(), db=self._facts)
                if raw is not None:
                    yield path, msgpack.unpackb(raw)

    def changed_since(self, generation: int) -> tuple[int, set[str] | None]:
        """The current generation and the paths changed after ``generation`` (None: too far behind)."""
        with self.read() as txn:
            current = self._generation(txn)
            if current == generation:
                return current, set()
            if current - generation >= CHANGES_KEPT or current < generation:
                return current, None
            changed: set[str] = set()
            cursor = txn.cursor(db=self._changes)
            if cursor.set_range(_GENERATION.pack(generation + 1)):
                for key, value in cursor:
                    if _GENERATION.unpack(key)[0] > current:
                        break
                    changed.update(msgpack.unpackb(value))
            return current, changed

    def size_on_disk(self) -> int:
        return sum(item.stat().st_size for item in self.path.iterdir() if item.is_file())
