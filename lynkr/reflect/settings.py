"""The reflector's and the skills' settings, collected into ``Config`` as its ``reflector`` group."""

from __future__ import annotations

import attrs

from lynkr.settings import BOOL, count, setting


@attrs.frozen(kw_only=True)
class ReflectorConfig:
    enabled: bool = setting(
        True, env="LYNKR_REFLECTOR_ENABLED", doc="Learn skills from finished tasks (the reflector).", converter=BOOL
    )
    in_requests: bool = setting(
        True,
        env="LYNKR_SKILLS_IN_REQUESTS",
        doc="Add the learned skills for the task's kind to each request, as one system block after the client's.",
        converter=BOOL,
    )
    tokens: int = setting(
        300, env="LYNKR_SKILLS_TOKENS", doc="Token budget of the skills block.", converter=count(32, 300, "tokens")
    )
    llm_phrasing: bool = setting(
        False,
        env="LYNKR_SKILLS_LLM_PHRASING",
        doc="Ask the configured model to phrase each new skill (recorded, so a rebuild never asks again).",
        converter=BOOL,
    )
