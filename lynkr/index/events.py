"""What the indexer records, on the ``index`` stream: runs and per-file updates, never symbol tables."""

from __future__ import annotations

from typing import Any

import attrs

from lynkr.events.records import Event, event

INDEX_STREAM = "index"


@event("index.run_started")
@attrs.frozen(kw_only=True)
class IndexRunStarted(Event):
    reason: str  # "start", "rebuild"
    known_files: int  # files the index held before the run


@event("index.run_finished")
@attrs.frozen(kw_only=True)
class IndexRunFinished(Event):
    reason: str
    counts: dict[str, Any]  # seen, parsed, unchanged, removed, skipped by reason, definitions, references
    duration_ms: float
    files_per_s: float


@event("index.file_updated")
@attrs.frozen(kw_only=True)
class IndexFileUpdated(Event):
    path: str
    content_hash: str  # hex
    definitions: int
    references: int
    duration_ms: float
    skipped: str  # the reason it was not indexed, or ""


@event("index.files_removed")
@attrs.frozen(kw_only=True)
class IndexFilesRemoved(Event):
    paths: tuple[str, ...]
