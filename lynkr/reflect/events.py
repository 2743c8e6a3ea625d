"""Skill events, all on the ``skills`` stream so ``lynkr skills`` reads them without the rest of the log."""

from __future__ import annotations

from typing import Any

import attrs

from lynkr.events.records import Event, event

SKILLS_STREAM = "skills"


@event("skill.learned")
@attrs.frozen(kw_only=True)
class SkillLearned(Event):
    """A finished task showed a reusable way of working that no skill held yet."""

    skill_id: str
    kind: str  # the task kind it is for: debugging, testing, refactoring, documentation, feature, or "any"
    category: str  # "workflow" (a sequence of phases that worked) or "recovery" (how an error was recovered from)
    pattern: list[str]  # the phases, e.g. ["search", "read", "edit", "test"]
    instruction: str
    confidence: float
    evidence: dict[str, Any]  # see lynkr.reflect.analysis.Observation.evidence


@event("skill.reinforced")
@attrs.frozen(kw_only=True)
class SkillReinforced(Event):
    """Another finished task showed the same way of working."""

    skill_id: str
    evidence: dict[str, Any]


@event("skill.used")
@attrs.frozen(kw_only=True)
class SkillUsed(Event):
    """Skills were injected into a request (once per task: its later requests carry the same block)."""

    session_id: str
    request_id: str
    kind: str
    skill_ids: list[str]


@event("skill.phrased")
@attrs.frozen(kw_only=True)
class SkillPhrased(Event):
    """The configured model rephrased a skill's instruction; recorded so a rebuild never asks it again."""

    skill_id: str
    text: str
    provider_request_id: str
