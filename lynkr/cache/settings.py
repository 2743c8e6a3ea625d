"""The prompt cache's settings, collected into ``Config`` as its ``prompt_cache`` group."""

from __future__ import annotations

import attrs

from lynkr.settings import BOOL, count, setting


@attrs.frozen(kw_only=True)
class PromptCacheConfig:
    enabled: bool = setting(
        True,
        env="PROMPT_CACHE_ENABLED",
        doc="Serve repeated prompts from the cache.",
        converter=BOOL,
    )
    ttl_ms: int = setting(
        300_000,
        env="PROMPT_CACHE_TTL_MS",
        doc="How long a cached response stays fresh.",
        converter=count(1, 300000, "ms"),
    )
    max_entries: int = setting(
        64, env="PROMPT_CACHE_MAX_ENTRIES", doc="Most responses kept in the cache.", converter=count(0, 64)
    )
    max_bytes: int = setting(
        32 * 1024 * 1024,
        env="PROMPT_CACHE_MAX_BYTES",
        doc="Most bytes of responses (as JSON) kept in the cache; the least recently used go first.",
        converter=count(0, 33554432, "bytes"),
    )

    @property
    def active(self) -> bool:
        """On, with room for an answer: otherwise no key is worked out at all."""
        return self.enabled and self.max_entries > 0 and self.max_bytes > 0
