"""The index's settings, collected into ``Config.index``."""

from __future__ import annotations

import attrs

from lynkr.settings import BOOL, count, setting


@attrs.frozen(kw_only=True)
class IndexConfig:
    enabled: bool = setting(True, env="LYNKR_INDEX", doc="Index the workspace and offer the index tools.",
                            converter=BOOL)
    max_file_bytes: int = setting(
        1_048_576, env="LYNKR_INDEX_MAX_FILE_BYTES", doc="Files larger than this are skipped (too_large).",
        converter=count(1024, 1048576, "bytes"),
    )
    workers: int = setting(
        1, env="LYNKR_INDEX_WORKERS",
        doc="Processes that parse large batches (1: a worker thread in the daemon's process).",
        converter=count(1, 2, "processes"),
    )
    watch: bool = setting(True, env="LYNKR_INDEX_WATCH", doc="Re-index files as they change.", converter=BOOL)
    repo_map_in_requests: bool = setting(
        False, env="LYNKR_REPO_MAP_IN_REQUESTS",
        doc="Add a repo map, seeded by the conversation's first message, to each request's system prompt.",
        converter=BOOL,
    )
    repo_map_tokens: int = setting(
        1024, env="LYNKR_REPO_MAP_TOKENS", doc="Token budget of the repo map.", converter=count(64, 1024, "tokens")
    )
    manage_claude_md: bool = setting(
        False, env="LYNKR_MANAGE_CLAUDE_MD",
        doc="Keep a marked generated section inside the workspace's own CLAUDE.md up to date.", converter=BOOL,
    )
