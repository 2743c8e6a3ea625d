"""The one writer of the index: applies parsed batches to the store and keeps the counts of a run.

It is synchronous and used from one thread at a time (the indexer actor's worker thread, ``lynkr index
rebuild``, the benchmark).  It holds the index's file records in memory so that planning a run, or
triaging watcher events, needs no store read.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import attrs

from lynkr.index.discover import Candidate
from lynkr.index.indexing import Parsed, Plan, parse_all, parse_job, plan_run
from lynkr.index.project import WATCHED_NAMES, scan_project
from lynkr.index.store import FileRecord, IndexStore

BATCH_FILES = 256  # files parsed and written per transaction during a large run


@attrs.define
class RunCounts:
    """What a run (initial, rebuild, or one batch of changes) did."""

    seen: int = 0
    parsed: int = 0
    unchanged: int = 0
    removed: int = 0
    vanished: int = 0
    syntax_errors: int = 0
    definitions: int = 0
    references: int = 0
    skipped: Counter[str] = attrs.field(factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        return {
            "seen": self.seen, "parsed": self.parsed, "unchanged": self.unchanged, "removed": self.removed,
            "vanished": self.vanished, "syntax_errors": self.syntax_errors, "definitions": self.definitions,
            "references": self.references, "skipped": dict(sorted(self.skipped.items())),
        }


@attrs.frozen(kw_only=True)
class FileUpdated:
    """One file written to the index, for the compact per-file log event."""

    path: str
    content_hash: str
    definitions: int
    references: int
    duration_ms: float
    skipped: str


def process_pool(workers: int) -> ProcessPoolExecutor:
    """Worker processes for big batches.  ``spawn``: forking a process that runs threads is unsafe."""
    return ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn"))


class IndexWriter:
    def __init__(self, store: IndexStore, root: Path, *, max_file_bytes: int) -> None:
        self.store = store
        self.root = root
        self.max_file_bytes = max_file_bytes
        self.known: dict[str, FileRecord] = store.records()

    def plan(self) -> Plan:
        return plan_run(self.root, self.known, max_file_bytes=self.max_file_bytes)

    def parse(self, jobs: Sequence[tuple[Candidate, bytes | None]], executor: Executor | None = None
              ) -> list[Parsed]:
        if executor is None or len(jobs) < 32:
            return parse_all(self.root, jobs)
        root = str(self.root)
        return list(executor.map(parse_job, [(root, c, h) for c, h in jobs], chunksize=16))

    def apply(self, parsed: Sequence[Parsed], removed: Sequence[str], counts: RunCounts, *,
              refresh_project: bool = False) -> list[FileUpdated]:
        """Write one batch in one transaction; updates ``known`` and ``counts``."""
        updates = [p.update for p in parsed if p.update is not None]
        gone = [path for path in removed if path in self.known]
        vanished = [p for p in parsed if p.vanished]
        touched = {u.record.path.rsplit("/", 1)[-1] for u in updates} | {g.rsplit("/", 1)[-1] for g in gone}
        meta: dict[str, Any] = {}
        if refresh_project or touched & WATCHED_NAMES:
            meta["project"] = dict(scan_project(self.root))
        if updates or gone or meta:
            self.store.write(updates, gone, meta=meta)
        for update in updates:
            self.known[update.record.path] = update.record
        for path in gone:
            self.known.pop(path, None)
        counts.removed += len(gone)
        counts.vanished += len(vanished)
        reports: list[FileUpdated] = []
        for item in parsed:
            if item.update is None:
                continue
            record = item.update.record
            if item.unchanged:
                counts.unchanged += 1
                continue
            if record.skipped:
                counts.skipped[record.skipped] += 1
            else:
                counts.parsed += 1
                counts.definitions += record.definitions
                counts.references += record.references
                counts.syntax_errors += item.syntax_errors
            reports.append(FileUpdated(path=record.path, content_hash=record.content_hash.hex(),
                                       definitions=record.definitions, references=record.references,
                                       duration_ms=round(item.duration_s * 1000, 3), skipped=record.skipped))
        return reports

    def batches(self, plan: Plan) -> Iterator[list[tuple[Candidate, bytes | None]]]:
        for start in range(0, len(plan.to_parse), BATCH_FILES):
            yield plan.to_parse[start : start + BATCH_FILES]

    def run(self, *, executor: Executor | None = None, progress: Callable[[int, int], None] | None = None,
            ) -> RunCounts:
        """A whole run in this thread: plan, parse in batches, write, drop what is gone."""
        started = time.perf_counter()
        plan = self.plan()
        counts = RunCounts(seen=plan.seen, unchanged=plan.unchanged, skipped=Counter(plan.skipped))
        done = 0
        for batch in self.batches(plan):
            self.apply(self.parse(batch, executor), (), counts)
            done += len(batch)
            if progress is not None:
                progress(done, len(plan.to_parse))
        self.apply([], plan.removed, counts, refresh_project=True)
        self.finish(counts, time.perf_counter() - started)
        return counts

    def forget(self) -> None:
        """Drop every file from the index, so the next run parses all of them again."""
        if self.known:
            self.store.write([], sorted(self.known))
            self.known.clear()

    def finish(self, counts: RunCounts, duration_s: float) -> None:
        runs = int(self.store.meta("runs_finished") or 0) + 1
        self.store.write([], meta={"last_run": {**counts.as_dict(), "duration_s": round(duration_s, 3),
                                                "finished_at": time.time()}, "runs_finished": runs})
