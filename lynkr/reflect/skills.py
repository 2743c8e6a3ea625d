"""The skill set: a pure fold of the ``skill.*`` events, rebuilt at start-up and kept live by the projector.

Every number a skill carries comes from the log: confidence from what was learned and how often it was seen
again, uses and the last-used time from ``skill.used`` records (their envelope's time).  A ``skill.learned`` for a
skill that already exists counts as seeing it again, so two reflections racing to learn the same skill end in the
same state whichever way the log orders them.  Evidence keeps the newest few tasks; ``tasks`` counts them all.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs
import msgpack  # type: ignore[import-untyped]

from lynkr.events.codec import payload_of
from lynkr.events.pmap import PMap
from lynkr.events.projections import OutOfOrderEvent, Projection
from lynkr.events.records import Payload, Recorded
from lynkr.reflect.events import SkillLearned, SkillPhrased, SkillReinforced, SkillUsed

EVIDENCE_KEPT = 5
CONFIDENCE_CEILING = 0.95
REINFORCEMENT = 0.25  # each new task closes this share of the gap to full confidence


@attrs.frozen(kw_only=True)
class Skill:
    skill_id: str
    kind: str
    category: str
    pattern: tuple[str, ...]
    instruction: str
    phrased: str | None  # the model's wording, when LLM phrasing is on
    confidence: float
    evidence: tuple[dict[str, Any], ...]  # newest last; payload dicts, read-only
    tasks: int
    uses: int
    learned_ns: int
    seen_ns: int
    used_ns: int  # 0 until first injected

    @property
    def text(self) -> str:
        return self.phrased or self.instruction


@attrs.frozen
class SkillsState:
    skills: PMap[str, Skill] = attrs.field(factory=PMap)
    last_seq: int = 0


_LEARNED, _REINFORCED, _USED, _PHRASED = SkillLearned.TYPE, SkillReinforced.TYPE, SkillUsed.TYPE, SkillPhrased.TYPE
SKILL_TOPICS = frozenset({_LEARNED, _REINFORCED, _USED, _PHRASED})


def apply_skill_event(state: SkillsState, recorded: Recorded) -> SkillsState:
    event = recorded.event
    return apply_skill_payload(state, recorded.seq, recorded.time_ns, event.TYPE, payload_of(event))


def apply_skill_payload(state: SkillsState, seq: int, time_ns: int, topic: str, payload: Payload) -> SkillsState:
    if seq <= state.last_seq:
        raise OutOfOrderEvent(seq, state.last_seq)
    if topic not in SKILL_TOPICS:
        return state
    skills = state.skills
    try:
        if topic == _USED:
            for skill_id in payload["skill_ids"]:
                used = skills.get(skill_id)
                if used is not None:
                    skills = skills.set(skill_id, attrs.evolve(used, uses=used.uses + 1, used_ns=time_ns))
            return SkillsState(skills, seq)
        skill_id = payload["skill_id"]
        skill = skills.get(skill_id)
        if topic == _PHRASED:
            if skill is None:
                return state
            return SkillsState(skills.set(skill_id, attrs.evolve(skill, phrased=str(payload["text"]))), seq)
        evidence = payload["evidence"]
        if skill is None:
            if topic != _LEARNED:
                return state
            skill = Skill(
                skill_id=skill_id, kind=str(payload["kind"]), category=str(payload["category"]),
                pattern=tuple(payload["pattern"]), instruction=str(payload["instruction"]), phrased=None,
                confidence=float(payload["confidence"]), evidence=(evidence,), tasks=1, uses=0,
                learned_ns=time_ns, seen_ns=time_ns, used_ns=0,
            )
        elif any(seen.get("request_id") == evidence.get("request_id") for seen in skill.evidence):
            return SkillsState(skills, seq)  # the same task twice (a reflector that caught up): nothing new
        else:
            skill = attrs.evolve(
                skill,
                confidence=round(min(CONFIDENCE_CEILING, skill.confidence + (1 - skill.confidence) * REINFORCEMENT), 4),
                evidence=(*skill.evidence[-(EVIDENCE_KEPT - 1) :], evidence),
                tasks=skill.tasks + 1,
                seen_ns=time_ns,
            )
    except (KeyError, TypeError, ValueError, AttributeError):
        return SkillsState(skills, seq)  # a damaged record that still decoded changes nothing
    return SkillsState(skills.set(skill_id, skill), seq)


SKILLS: Projection[SkillsState] = Projection(
    initial=SkillsState(),
    apply=apply_skill_event,
    topics=SKILL_TOPICS,
    apply_payload=apply_skill_payload,
)


def encode_skills(state: SkillsState) -> bytes:
    rows = [
        [s.skill_id, s.kind, s.category, list(s.pattern), s.instruction, s.phrased, s.confidence, list(s.evidence),
         s.tasks, s.uses, s.learned_ns, s.seen_ns, s.used_ns]
        for s in state.skills.values()
    ]
    encoded: bytes = msgpack.packb([state.last_seq, rows], use_bin_type=True)
    return encoded


def decode_skills(data: bytes | memoryview) -> SkillsState:
    last_seq, rows = msgpack.unpackb(data)
    skills: PMap[str, Skill] = PMap()
    for (skill_id, kind, category, pattern, instruction, phrased, confidence, evidence, tasks, uses, learned_ns,
         seen_ns, used_ns) in rows:
        if not (type(skill_id) is str and type(instruction) is str and isinstance(evidence, list)):
            raise ValueError("a skill in the snapshot has the wrong shape")
        skills = skills.set(skill_id, Skill(
            skill_id=skill_id, kind=kind, category=category, pattern=tuple(pattern), instruction=instruction,
            phrased=phrased, confidence=float(confidence), evidence=tuple(evidence), tasks=int(tasks), uses=int(uses),
            learned_ns=int(learned_ns), seen_ns=int(seen_ns), used_ns=int(used_ns),
        ))
    return SkillsState(skills, int(last_seq))


def describe_skills(state: SkillsState) -> str:
    skills: Sequence[Skill] = list(state.skills.values())
    return f"{len(skills):,} skills, {sum(s.uses for s in skills):,} uses"
