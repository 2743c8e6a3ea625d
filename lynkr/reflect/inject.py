"""Skills in requests (``LYNKR_SKILLS_IN_REQUESTS``): one compact system block after the client's own.

The block goes last in ``system``, so the client's system prompt stays a byte-identical prefix and the upstream's
prompt cache keeps serving it.  It is chosen once per task: the first request of a task (the person's newest
words) picks the skills for the task's kind, ranked by confidence, use and recency within the token budget, and
records ``skill.used``; the task's later requests (tool results going back) carry the very same bytes, so the
cached prefix reaches into the messages as well.  The CLI's small background requests (a Haiku model, or no
tools offered) get nothing: skills are about using tools.
"""

from __future__ import annotations

import hashlib
import math
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import attrs

from lynkr.actors.messages import Turn
from lynkr.actors.recorder import Recorder
from lynkr.reflect.analysis import ANY_KIND, classify, task_start
from lynkr.wire.anthropic import is_small_request
from lynkr.wire.content import user_words
from lynkr.reflect.events import SKILLS_STREAM, SkillUsed
from lynkr.reflect.skills import Skill, SkillsState

HEADER = "Skills lynkr learned from earlier {kind} tasks in this workspace (use them where they fit):"
MIN_CONFIDENCE = 0.3
CHARS_PER_TOKEN = 4  # prose; the budget is a ceiling, so an estimate on the generous side is right
RECENCY_DAYS = 7.0
TASKS_REMEMBERED = 256  # tasks whose block is kept, so their later requests carry the same bytes


def rank(skills: Iterable[Skill], kind: str, now_ns: int) -> list[Skill]:
    """The skills for ``kind`` (and those for any kind), best first: confidence, then use, then recency."""

    def score(skill: Skill) -> tuple[float, str]:
        age_days = max(0.0, (now_ns - max(skill.seen_ns, skill.used_ns)) / 86_400e9)
        value = skill.confidence + 0.1 * math.log1p(skill.uses + skill.tasks) + 0.2 * math.exp(-age_days / RECENCY_DAYS)
        return (-value, skill.skill_id)

    chosen = [s for s in skills if s.kind in (kind, ANY_KIND) and s.confidence >= MIN_CONFIDENCE]
    return sorted(chosen, key=score)


def skills_block(ranked: Sequence[Skill], kind: str, budget_tokens: int) -> tuple[str, list[str]]:
    """The block's text and the ids of the skills in it: as many of ``ranked`` as fit the budget, in order."""
    lines = [HEADER.format(kind=kind)]
    size = len(lines[0])
    ids: list[str] = []
    for skill in ranked:
        line = f"- {skill.text} (confidence {skill.confidence:.2f}, seen in {skill.tasks} tasks)"
        if (size + 1 + len(line)) / CHARS_PER_TOKEN > budget_tokens:
            continue  # a shorter skill further down may still fit
        lines.append(line)
        size += 1 + len(line)
        ids.append(skill.skill_id)
    return ("\n".join(lines), ids) if ids else ("", [])


def with_block(request: dict[str, Any], text: str) -> dict[str, Any]:
    """``request`` with ``text`` as its last system block (a string system prompt becomes one block first)."""
    system = request.get("system")
    blocks: list[Any] = [{"type": "text", "text": system}] if isinstance(system, str) and system else (
        list(system) if isinstance(system, list) else []
    )
    return {**request, "system": [*blocks, {"type": "text", "text": text}]}


def wants_skills(request: dict[str, Any]) -> bool:
    """Not the CLI's background requests (titles, summaries on a Haiku model), nor requests offering no tools."""
    return bool(request.get("tools")) and not is_small_request(request)


@attrs.define
class SkillsContext:
    """Adds the skills block to a turn's request (the session actor calls it when the setting is on)."""

    skills: Callable[[], SkillsState]  # the live skill set (the projector's)
    recorder: Recorder
    budget_tokens: int
    clock_ns: Callable[[], int]
    blocks: OrderedDict[str, str] = attrs.field(factory=OrderedDict)

    async def __call__(self, turn: Turn) -> Turn:
        request = turn.request
        skills = self.skills().skills
        if not skills or not wants_skills(request):
            return turn
        messages = request.get("messages") or []
        start = task_start(messages)
        if start is None:
            return turn
        words = user_words(messages[start].get("content"))
        key = hashlib.sha256(f"{turn.session_id}\x1f{start}\x1f{words}".encode()).hexdigest()
        text = self.blocks.get(key)
        if text is None:
            kind = classify(words)
            text, ids = skills_block(rank(skills.values(), kind, self.clock_ns()), kind,
                                     self.budget_tokens)
            self.blocks[key] = text
            while len(self.blocks) > TASKS_REMEMBERED:
                self.blocks.popitem(last=False)
            if ids:
                await self.recorder.record(
                    SKILLS_STREAM,
                    SkillUsed(session_id=turn.session_id, request_id=turn.request_id, kind=kind, skill_ids=ids),
                )
        else:
            self.blocks.move_to_end(key)
        return attrs.evolve(turn, request=with_block(request, text)) if text else turn
