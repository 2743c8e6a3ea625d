"""The indexer: indexes the workspace at start, keeps the index current while files change, rebuilds on request.

It reports started at once and indexes in the background, so ``/health`` never waits for a big workspace.
Parsing holds the GIL, so every batch runs off the trio loop: in a worker thread, or (``LYNKR_INDEX_WORKERS``
above 1, for batches big enough to pay for process start-up) in a pool of worker processes.  All writes go
through one :class:`~lynkr.index.writer.IndexWriter` under one lock, one thread call per transaction.

Live changes come from watchfiles: whatever arrives within its debounce window is one batch, so a branch
switch that rewrites thousands of files is one triage and one run of batches, not thousands of events.  The
generated ``CLAUDE.md`` is rewritten after a quiet moment following a material change, only when its text changed.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterable
from concurrent.futures import Executor
from pathlib import Path
from typing import Any

import attrs
import trio
import watchfiles

from lynkr.actors.recorder import Recorder
from lynkr.config import Config
from lynkr.index import claude_md
from lynkr.index.discover import VCS_DIRS, VENDORED_DIRS
from lynkr.index.events import INDEX_STREAM, IndexFilesRemoved, IndexFileUpdated, IndexRunFinished, IndexRunStarted
from lynkr.index.indexing import Plan, triage_changes
from lynkr.index.progress import progress_bar
from lynkr.index.store import IndexStore
from lynkr.index.symbols import IndexReader
from lynkr.index.writer import FileUpdated, IndexWriter, RunCounts, process_pool

log = logging.getLogger("lynkr.index")

POOL_THRESHOLD = 256  # files in a batch before worker processes are worth their start-up
CLAUDE_MD_QUIET_S = 2.0  # regenerate the guide once changes have paused this long
WATCH_STEP_MS = 10
WATCH_DEBOUNCE_MS = 100


@attrs.frozen
class Rebuild:
    """Re-index everything from scratch; the counts go to ``reply``."""

    reply: trio.MemorySendChannel[dict[str, Any]]


Message = Rebuild


async def request_rebuild(mailbox: Any) -> dict[str, Any]:
    """Ask the indexer behind ``mailbox`` (a ``Mailbox[Message]``) to rebuild, and wait for its counts."""
    send, receive = trio.open_memory_channel[dict[str, Any]](1)
    async with receive:
        await mailbox.send(Rebuild(send))
        return await receive.receive()


async def run(
    config: Config,
    *,
    inbox: trio.MemoryReceiveChannel[Message],
    store: IndexStore,
    reader: IndexReader,
    recorder: Recorder,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    root = config.workspace_root.resolve()
    writer = await trio.to_thread.run_sync(
        lambda: IndexWriter(store, root, max_file_bytes=config.index.max_file_bytes)
    )
    indexer = _Indexer(config, writer, reader, recorder)
    async with inbox, trio.open_nursery() as nursery:
        stop = trio.Event()
        try:
            ready = trio.Event()
            if config.index.watch:
                nursery.start_soon(indexer.watch, stop, ready)
                await ready.wait()  # the watcher is running before the first scan: no edit falls between
            task_status.started()
            nursery.start_soon(indexer.guide_writer)
            await indexer.index_all("start")
            async for message in inbox:
                counts = await indexer.index_all("rebuild", from_scratch=True)
                with trio.move_on_after(1):
                    await message.reply.send(counts)
                await message.reply.aclose()
        finally:
            stop.set()
            indexer.close()


class _Indexer:
    def __init__(self, config: Config, writer: IndexWriter, reader: IndexReader, recorder: Recorder) -> None:
        self.config = config
        self.writer = writer
        self.reader = reader
        self.recorder = recorder
        self.lock = trio.Lock()
        self.changed = trio.Event()  # set after a material change: the guide writer waits for it
        self._executor: Executor | None = None

    def executor(self, files: int) -> Executor | None:
        if self.config.index.workers < 2 or files < POOL_THRESHOLD:
            return None
        if self._executor is None:
            self._executor = process_pool(self.config.index.workers)
        return self._executor

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)

    async def index_all(self, reason: str, *, from_scratch: bool = False) -> dict[str, Any]:
        async with self.lock:
            started = time.perf_counter()
            await self.recorder.record(INDEX_STREAM, IndexRunStarted(reason=reason, known_files=len(self.writer.known)))
            if from_scratch:
                await trio.to_thread.run_sync(self.writer.forget)
            plan = await trio.to_thread.run_sync(self.writer.plan)
            counts = RunCounts(seen=plan.seen, unchanged=plan.unchanged, skipped=plan.skipped.copy())
            await self._run_plan(plan, counts, show_progress=reason == "start")
            duration = time.perf_counter() - started
            await trio.to_thread.run_sync(self.writer.finish, counts, duration)
            self.changed.set()
            summary = counts.as_dict()
            await self.recorder.record(
                INDEX_STREAM,
                IndexRunFinished(reason=reason, counts=summary, duration_ms=round(duration * 1000, 3),
                                 files_per_s=round(counts.parsed / duration, 1) if duration > 0 else 0.0),
            )
            return summary

    async def _run_plan(self, plan: Plan, counts: RunCounts, *, show_progress: bool) -> None:
        executor = self.executor(len(plan.to_parse))
        with progress_bar(len(plan.to_parse), enabled=show_progress and sys.stderr.isatty()) as advance:
            for batch in self.writer.batches(plan):
                parsed = await trio.to_thread.run_sync(self.writer.parse, batch, executor)
                reports = await trio.to_thread.run_sync(self.writer.apply, parsed, (), counts)
                await self._record_files(reports)
                advance(len(batch))
        await trio.to_thread.run_sync(lambda: self.writer.apply([], plan.removed, counts, refresh_project=True))
        if plan.removed:
            await self.recorder.record(INDEX_STREAM, IndexFilesRemoved(paths=tuple(plan.removed)))

    async def apply_changes(self, paths: Iterable[str]) -> None:
        async with self.lock:
            writer = self.writer
            triage = await trio.to_thread.run_sync(
                lambda: triage_changes(writer.root, writer.known, paths, max_file_bytes=writer.max_file_bytes)
            )
            if not triage.to_parse and not triage.removed:
                return
            counts = RunCounts()
            # The guide is rebuilt only for material changes: files come or go, or a file's definitions count
            # changes.  An edit inside a function body leaves it alone (its ranking pass costs whole seconds
            # on a big workspace).
            before = {c.path: writer.known[c.path].definitions if c.path in writer.known else -1
                      for c, _ in triage.to_parse}
            executor = self.executor(len(triage.to_parse))
            for start in range(0, max(1, len(triage.to_parse)), 256):
                batch = triage.to_parse[start : start + 256]
                removed = triage.removed if start == 0 else []
                parsed = await trio.to_thread.run_sync(writer.parse, batch, executor)
                reports = await trio.to_thread.run_sync(writer.apply, parsed, removed, counts)
                await self._record_files(reports)
            if triage.removed:
                await self.recorder.record(INDEX_STREAM, IndexFilesRemoved(paths=tuple(triage.removed)))
            after = {path: writer.known[path].definitions if path in writer.known else -1 for path in before}
            if triage.removed or after != before:
                self.changed.set()

    async def _record_files(self, reports: list[FileUpdated]) -> None:
        for report in reports:
            await self.recorder.record(
                INDEX_STREAM,
                IndexFileUpdated(path=report.path, content_hash=report.content_hash, definitions=report.definitions,
                                 references=report.references, duration_ms=report.duration_ms, skipped=report.skipped),
            )

    async def watch(self, stop: trio.Event, ready: trio.Event) -> None:
        root = self.writer.root
        try:
            async for changes in watchfiles.awatch(
                root, watch_filter=_worth_watching, stop_event=stop, step=WATCH_STEP_MS,
                debounce=WATCH_DEBOUNCE_MS, yield_on_timeout=True, rust_timeout=100,
            ):
                ready.set()
                paths = {_relative(root, path) for _, path in changes}
                paths.discard(None)
                if paths:
                    await self.apply_changes(p for p in paths if p is not None)
        except (OSError, RuntimeError) as error:
            # Out of inotify watches, or a file system that cannot be watched: the index still serves, as of
            # its last run; restarting every few seconds would not fix the machine's limits.
            log.warning("cannot watch %s for changes (%s); the index will not follow edits until a restart or "
                        "workspace_index_rebuild; raise fs.inotify.max_user_watches to fix it", root, error)
            ready.set()

    async def guide_writer(self) -> None:
        """Rewrite the generated CLAUDE.md once writes pause, when its text changed."""
        while True:
            await self.changed.wait()
            self.changed = trio.Event()
            await trio.sleep(CLAUDE_MD_QUIET_S)
            if self.changed.is_set():
                continue  # still changing: wait for the quiet
            await trio.to_thread.run_sync(self._write_guide)

    def _write_guide(self) -> None:
        text = claude_md.render(self.reader)
        claude_md.write_generated(self.config.data_dir, text)
        if self.config.index.manage_claude_md:
            claude_md.manage_section(self.writer.root, text)


def _worth_watching(change: watchfiles.Change, path: str) -> bool:
    parts = Path(path).parts
    return not any(part in VCS_DIRS or part in VENDORED_DIRS for part in parts)


def _relative(root: Path, path: str) -> str | None:
    try:
        return Path(path).relative_to(root).as_posix()
    except ValueError:
        return None
