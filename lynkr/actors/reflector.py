"""The reflector: learns skills from finished tasks, off the hot path, and records them as events.

It follows the recorder's published records (like the projector) and remembers, for recent requests, where
their ``request.received`` sits in the log.  A task is finished when an answer has no further tool calls:

* on the direct path, a ``response.completed`` whose message stopped with ``end_turn`` and holds no ``tool_use``.
  The pool records one such completion for each round of lynkr's own agent loop too, and the loop's
  ``agent.round`` record for that round follows it; so a direct completion waits ``SETTLE_S`` and is dropped if
  an ``agent.round`` of its request shows up meanwhile;
* for a turn lynkr's agent loop ran, its ``agent.loop_ended`` with reason ``end_turn``.  The server-run rounds
  the client never saw (``agent.rounds``, recorded before it) are appended to the client's transcript, so what
  lynkr ran counts like what the client ran.

The reflector then reads the request from the log and analyses it in a worker thread
(:mod:`lynkr.reflect.analysis`), and records ``skill.learned`` for a skill not yet in the live skill set and
``skill.reinforced`` for one that is.  Everything the skill set holds is folded from those records, so a rebuild
from the log gives exactly the live set.  Answers from the prompt cache are not analysed again.

With ``LYNKR_SKILLS_LLM_PHRASING`` a newly learned skill is sent to the configured model through the provider
pool to be phrased; its answer is recorded as ``skill.phrased``, and the model is never asked again for it.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import attrs
import orjson
import trio

from lynkr.actors.messages import ErrorReply, StreamItem, Turn, Whole
from lynkr.actors.providers import Message as ProviderMessage
from lynkr.actors.recorder import Hub, Recorder, waiting
from lynkr.actors.runtime import Mailbox
from lynkr.agent.events import LoopEnded, RoundRan, RoundsKept
from lynkr.events.catalog import RequestReceived, ResponseCompleted
from lynkr.events.records import Recorded
from lynkr.events.store import EventStore
from lynkr.reflect.analysis import Observation, analyse, observations
from lynkr.reflect.events import SKILLS_STREAM, SkillLearned, SkillPhrased, SkillReinforced
from lynkr.reflect.settings import ReflectorConfig
from lynkr.reflect.skills import SkillsState

log = logging.getLogger("lynkr.reflector")

SETTLE_S = 0.3  # long enough for the agent loop's ``agent.round`` to follow the pool's completion of a round
LIVE_BUFFER = 4096
REMEMBERED = 4096  # requests whose place in the log is remembered
CACHE_PROVIDER = "prompt-cache"  # a hit was analysed when first answered
LOOP_PROVIDER = "agent-loop"  # the loop's answer to the client; the task ends with its ``agent.loop_ended``
PHRASING_STREAM = "skills.phrasing"  # the pool records phrasing requests here, apart from any session
PHRASING_MAX_TOKENS = 200
PHRASING_TIMEOUT_S = 60.0


@attrs.frozen(kw_only=True)
class _Finished:
    request_id: str
    session_id: str
    final: dict[str, Any]  # the answer the client received (its usage counts)
    rounds: tuple[dict[str, Any], ...] = ()  # server-run rounds the client never saw


async def run(
    config: ReflectorConfig,
    *,
    store: EventStore,
    hub: Hub,
    recorder: Recorder,
    skills: Callable[[], SkillsState],
    providers: Mailbox[ProviderMessage] | None = None,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    reflector = _Reflector(config, store, recorder, skills, providers)
    started = False
    async with trio.open_nursery() as phrasing:
        reflector.phrasing = phrasing
        while True:
            with hub.subscribe(LIVE_BUFFER) as records:
                if not started:
                    task_status.started()
                    started = True
                while True:
                    with trio.move_on_at(reflector.next_due()):
                        try:
                            first = await records.receive()
                        except trio.EndOfChannel:
                            break
                        for recorded in (first, *waiting(records)):
                            reflector.see(recorded)
                    for finished in reflector.due(trio.current_time()):
                        await reflector.reflect(finished)
            log.warning("the reflector fell behind the recorder; tasks finished meanwhile are not analysed")


def read_request(store: EventStore, seq: int, stream: str) -> dict[str, Any] | None:
    """The request body recorded at ``seq`` (blocking: call it from a worker thread)."""
    for recorded in store.read(seq, stream=stream, topics=(RequestReceived.TYPE,)):
        if recorded.seq == seq and isinstance(recorded.event, RequestReceived):
            return recorded.event.request()
        return None
    return None


class _Reflector:
    def __init__(
        self,
        config: ReflectorConfig,
        store: EventStore,
        recorder: Recorder,
        skills: Callable[[], SkillsState],
        providers: Mailbox[ProviderMessage] | None,
    ) -> None:
        self.config = config
        self.store = store
        self.recorder = recorder
        self.skills = skills
        self.providers = providers
        self.phrasing: trio.Nursery | None = None
        self.requests: OrderedDict[str, tuple[int, str]] = OrderedDict()  # request id -> (seq, stream)
        self.rounds: OrderedDict[str, tuple[dict[str, Any], ...]] = OrderedDict()
        self.loop_answers: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self.waiting: dict[str, tuple[float, _Finished]] = {}  # direct completions settling
        self.ready: list[_Finished] = []
        self.learned: set[str] = set()  # ids this reflector recorded as learned, maybe not folded yet
        self.phrasings = 0

    def next_due(self) -> float:
        if self.ready:
            return trio.current_time()
        return min((due for due, _ in self.waiting.values()), default=float("inf"))

    def see(self, recorded: Recorded) -> None:
        event = recorded.event
        if isinstance(event, RequestReceived):
            _remember(self.requests, event.request_id, (recorded.seq, recorded.stream))
        elif isinstance(event, ResponseCompleted):
            message = event.message
            if event.provider == LOOP_PROVIDER:
                _remember(self.loop_answers, event.request_id, message)
                return
            if event.provider == CACHE_PROVIDER or message.get("stop_reason") != "end_turn":
                return
            if any(isinstance(b, dict) and b.get("type") == "tool_use" for b in message.get("content") or ()):
                return
            finished = _Finished(request_id=event.request_id, session_id=event.session_id, final=message)
            self.waiting[event.request_id] = (trio.current_time() + SETTLE_S, finished)
        elif isinstance(event, RoundRan):
            self.waiting.pop(event.request_id, None)  # a round of the agent loop, not a finished task
        elif isinstance(event, RoundsKept):
            _remember(self.rounds, event.request_id, tuple(event.messages))
        elif isinstance(event, LoopEnded) and event.reason == "end_turn":
            self.ready.append(_Finished(
                request_id=event.request_id, session_id=event.session_id,
                final=self.loop_answers.pop(event.request_id, {}), rounds=self.rounds.pop(event.request_id, ()),
            ))

    def due(self, now: float) -> list[_Finished]:
        due, self.ready = self.ready, []
        for request_id, (when, finished) in list(self.waiting.items()):
            if when <= now:
                del self.waiting[request_id]
                due.append(finished)
        return due

    async def reflect(self, finished: _Finished) -> None:
        place = self.requests.pop(finished.request_id, None)
        if place is None:
            return  # not a client's request (a tool summary, a phrasing), or one from before this reflector
        try:
            found = await trio.to_thread.run_sync(self._observe, finished, *place)
        except Exception:  # one transcript lynkr cannot read must not stop the reflector
            log.exception("could not analyse the task that request %s finished", finished.request_id)
            return
        if found is None:
            return
        model, seen = found
        known = self.skills().skills
        for observation in seen:
            if observation.skill_id in known or observation.skill_id in self.learned:
                await self.recorder.record(
                    SKILLS_STREAM, SkillReinforced(skill_id=observation.skill_id, evidence=observation.evidence)
                )
                continue
            self.learned.add(observation.skill_id)
            await self.recorder.record(
                SKILLS_STREAM,
                SkillLearned(
                    skill_id=observation.skill_id, kind=observation.kind, category=observation.category,
                    pattern=list(observation.pattern), instruction=observation.instruction,
                    confidence=observation.confidence, evidence=observation.evidence,
                ),
            )
            if self.config.llm_phrasing and self.providers is not None and self.phrasing is not None:
                self.phrasing.start_soon(self._phrase, observation, model)

    def _observe(self, finished: _Finished, seq: int, stream: str) -> tuple[str, list[Observation]] | None:
        request = read_request(self.store, seq, stream)
        if request is None:
            return None
        messages = [*(request.get("messages") or ()), *finished.rounds]
        task = analyse(messages, finished.final)
        if task is None or not task.calls:
            return None
        return str(request.get("model", "")), observations(
            task, session_id=finished.session_id, request_id=finished.request_id
        )

    async def _phrase(self, observation: Observation, model: str) -> None:
        """Ask the configured model for a crisper wording of a new skill, and record it."""
        assert self.providers is not None
        prompt = (
            "Rewrite this coding-agent skill as one short imperative instruction (at most 40 words). "
            "Keep every tool and command name. Answer with the instruction only.\n\n"
            f"Task kind: {observation.kind}\nSkill: {observation.instruction}\n"
            f"Seen in: {observation.evidence.get('task', '')}"
        )
        request = {"model": model, "max_tokens": PHRASING_MAX_TOKENS, "stream": False,
                   "messages": [{"role": "user", "content": prompt}]}
        self.phrasings += 1
        request_id = f"{observation.skill_id}-phrasing-{self.phrasings}"
        reply, replies = trio.open_memory_channel[StreamItem](4)
        cancel = trio.CancelScope()
        turn = Turn(request_id=request_id, session_id=PHRASING_STREAM, request=request, body=orjson.dumps(request),
                    headers={}, reply=reply, cancel=cancel, received_ns=time.time_ns())
        text = ""
        with trio.move_on_after(PHRASING_TIMEOUT_S):
            try:
                async with replies:
                    await self.providers.send(turn)
                    async for item in replies:
                        if isinstance(item, ErrorReply):
                            log.warning("phrasing skill %s failed: %s", observation.skill_id, item.body[:300])
                            return
                        if isinstance(item, Whole):
                            text = "".join(str(b.get("text", "")) for b in item.message["content"]
                                           if b.get("type") == "text").strip()
            finally:
                cancel.cancel()
        if text:
            await self.recorder.record(
                SKILLS_STREAM, SkillPhrased(skill_id=observation.skill_id, text=text[:600],
                                            provider_request_id=request_id)
            )


def _remember(table: OrderedDict[str, Any], key: str, value: Any) -> None:
    table[key] = value
    table.move_to_end(key)
    while len(table) > REMEMBERED:
        table.popitem(last=False)
