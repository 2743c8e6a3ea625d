"""``lynkr skills [ID] [--json]``: the skills learned so far, and one skill's evidence.

Reads the log read-only (it works while the daemon runs) and folds only the ``skills`` stream, through the
by-stream index, the way the daemon folds it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from typing import Any

from lynkr.config import Config
from lynkr.datadir import open_log_readonly
from lynkr.events.projections import replay
from lynkr.reflect.events import SKILLS_STREAM
from lynkr.reflect.skills import SKILLS, Skill, SkillsState

Loader = Callable[[argparse.Namespace], Config]


def add_commands(commands: Any, common: argparse.ArgumentParser, load: Loader) -> None:
    skills = commands.add_parser(
        "skills", parents=[common], help="list the skills the reflector learned, or explain one",
        description="List the skills learned from finished tasks by kind, most confident first, or show "
        "one skill with its evidence: the sessions and requests it was seen in.",
    )
    skills.add_argument("skill", nargs="?", help="a skill id (or a unique prefix) to explain")
    skills.add_argument("--json", action="store_true", help="print JSON")
    skills.set_defaults(command=lambda args: _skills(args, load(args)))


def load_skills(config: Config) -> SkillsState:
    with open_log_readonly(config.data_dir) as store:
        state: SkillsState = replay(store, {"skills": SKILLS}, stream=SKILLS_STREAM)["skills"]
    return state


def skill_data(skill: Skill, *, evidence: bool) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": skill.skill_id,
        "kind": skill.kind,
        "category": skill.category,
        "pattern": list(skill.pattern),
        "instruction": skill.instruction,
        "phrased": skill.phrased,
        "confidence": skill.confidence,
        "tasks": skill.tasks,
        "uses": skill.uses,
        "learned_at": _iso(skill.learned_ns),
        "last_seen_at": _iso(skill.seen_ns),
        "last_used_at": _iso(skill.used_ns) if skill.used_ns else None,
    }
    if evidence:
        data["evidence"] = [dict(item) for item in skill.evidence]
    return data


def _skills(args: argparse.Namespace, config: Config) -> int:
    state = load_skills(config)
    everything = list(state.skills.values())
    if args.skill is None:
        ranked = sorted(everything, key=lambda s: (s.kind, -s.confidence, -s.tasks, s.skill_id))
        if args.json:
            print(json.dumps([skill_data(s, evidence=False) for s in ranked], indent=2))
            return 0
        if not ranked:
            print("no skills learned yet: they come from tasks that finish with a final answer after tool calls")
        for skill in ranked:
            print(f"{skill.skill_id}  {skill.kind:<13} {skill.category:<8} conf {skill.confidence:.2f}  "
                  f"tasks {skill.tasks}  uses {skill.uses}\n    {skill.text}")
        return 0
    matches = [s for s in everything if s.skill_id.startswith(args.skill)]
    if len(matches) != 1:
        found = "no skill" if not matches else f"{len(matches)} skills"
        print(f"lynkr: {found} match {args.skill!r}; run `lynkr skills` to list them", file=sys.stderr)
        return 1
    (skill,) = matches
    data = skill_data(skill, evidence=True)
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    print(f"{skill.skill_id}: {skill.text}")
    if skill.phrased:
        print(f"  as derived: {skill.instruction}")
    print(f"  kind {skill.kind}, {skill.category} {' -> '.join(skill.pattern)}")
    print(f"  confidence {skill.confidence:.2f}; seen in {skill.tasks} tasks; injected {skill.uses} times"
          f"{'; last ' + str(data['last_used_at']) if skill.used_ns else ''}")
    print("  evidence (newest last):")
    for item in skill.evidence:
        print(f"    session {item.get('session_id')} request {item.get('request_id')}: "
              f"{' -> '.join(item.get('phases') or ())}, {item.get('tool_calls')} tool calls in {item.get('steps')} "
              f"steps, {item.get('errors')} errors, {item.get('tokens')} tokens; task: {item.get('task')!r}")
    return 0


def _iso(time_ns: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time_ns / 1e9))
