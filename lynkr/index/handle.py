"""What the daemon hands to the tool worker: the index reader, and a way to ask the indexer to rebuild."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import attrs

from lynkr.index.symbols import IndexReader

Rebuild = Callable[[], Awaitable[dict[str, Any]]]


@attrs.frozen(kw_only=True)
class IndexHandle:
    """The workspace index as tools see it.

    ``reader`` answers queries (thread-safe; call it through ``trio.to_thread.run_sync``).  ``rebuild`` asks
    whoever writes the index (the indexer actor) for a full re-index and returns its counts; None where
    nothing writes (a read-only view).
    """

    reader: IndexReader
    rebuild: Rebuild | None = None

    def generation(self) -> int:
        return self.reader.generation()

    def detected_test_command(self) -> str | None:
        """The test command the manifests suggest (``workspace_test_run`` uses it when none is configured)."""
        project = self.reader.store.meta("project")
        command = project.get("test_command") if isinstance(project, dict) else None
        return command if isinstance(command, str) else None
