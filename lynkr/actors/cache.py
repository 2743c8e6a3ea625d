"""The prompt cache actor: answers a repeated request from a kept answer, without calling the upstream.

The session actor sends it the turns of the direct path (no lynkr tools offered) while ``PROMPT_CACHE_ENABLED``
is on.  For each it works out the route (the provider and upstream model the pool would try first) and the
key (:func:`lynkr.cache.key.cache_key`), once, then:

- on a hit, answers the turn itself: one ``Frames`` holding the whole stream a live answer would have sent, or
  one ``Whole``, with the reused input reported as ``cache_read_input_tokens``;
- on a miss, hands the turn to the provider pool with a :class:`CacheSlot`; the pool offers the completed answer
  back (``CacheStore``) and the cache keeps it if it is a complete, successful answer from the provider the key
  names, recorded durably before it is ever served.

Stores, hits, misses and evictions are events under the ``cache`` stream.  The daemon rebuilds their fold at
start with the rest of the derived state (:data:`lynkr.cache.lru.PROMPT_CACHE`, from a snapshot and the log's
tail) and hands this actor the table it holds (:func:`lynkr.cache.lru.restored`); the actor first records the
eviction of every entry that expired meanwhile, so a restarted daemon holds the entries still valid, and no
expired one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any, cast

import attrs
import orjson
import trio

from lynkr.actors.messages import CacheMessage, CacheSlot, CacheStore, Frames, Turn, Whole
from lynkr.actors.providers import Message as ProviderMessage
from lynkr.actors.recorder import Recorder
from lynkr.actors.runtime import Mailbox
from lynkr.cache.events import CACHE_STREAM, CacheEvicted, CacheHit, CacheMiss, CacheStored
from lynkr.cache.key import cache_key
from lynkr.cache.lru import EXPIRED, CacheState
from lynkr.config import Config
from lynkr.events.catalog import CACHE_PROVIDER, ResponseCompleted
from lynkr.http.app import GaugeFamily
from lynkr.http.metrics import Sample
from lynkr.providers.base import Adapter
from lynkr.providers.registry import adapter_for
from lynkr.upstream.fitting import InputEstimate
from lynkr.upstream.routing import route
from lynkr.wire.anthropic import is_small_request, is_thinking_request, message_to_events
from lynkr.wire.sse import encode_events
from lynkr.wire.types import Message

log = logging.getLogger("lynkr.cache")

# Complete answers.  "refusal" is the model declining; "pause_turn" a server tool turn the client must continue.
KEPT_STOP_REASONS = frozenset({"end_turn", "stop_sequence", "max_tokens", "tool_use"})


async def run(
    config: Config,
    inbox: trio.MemoryReceiveChannel[CacheMessage],
    *,
    state: CacheState,
    own: Mailbox[CacheMessage],
    providers: Mailbox[ProviderMessage],
    recorder: Recorder,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """``state`` is the daemon's, rebuilt from the log at start; ``own`` is this actor's mailbox, for the slots."""
    cache = _Cache(config, state, own, providers, recorder)
    # What expired while the daemon was down (or no longer fits budgets that shrank) goes before the first
    # request, recorded, so the rebuilt table and the log agree and an expired entry never comes back.
    for evicted in state.evictions(now_ms()):
        await cache.apply(evicted)
    async with inbox, trio.open_nursery() as tasks:
        task_status.started()
        async for message in inbox:
            if isinstance(message, CacheStore):
                tasks.start_soon(cache.store, message)
                continue
            try:
                await cache.take(message, tasks)
            except BaseException:
                message.reply.close()  # the edge then answers "lost" at once instead of waiting for ever
                raise


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class _Cache:
    def __init__(
        self,
        config: Config,
        state: CacheState,
        own: Mailbox[CacheMessage],
        providers: Mailbox[ProviderMessage],
        recorder: Recorder,
    ) -> None:
        self.config = config
        self.ttl_ms = config.prompt_cache.ttl_ms
        self.state = state
        self.own = own
        self.providers = providers
        self.recorder = recorder
        self.adapters: dict[str, Adapter] = {name: adapter_for(p) for name, p in config.providers.items()}

    async def take(self, turn: Turn, tasks: trio.Nursery) -> None:
        routed = self._route(turn.request)
        if routed is None:
            await self.providers.send(turn)  # the pool answers with what is wrong with the configuration
            return
        provider, model = routed
        key = cache_key(
            turn.request, provider=provider, upstream_model=model, betas=turn.headers.get("anthropic-beta", "")
        )
        now = now_ms()
        entry = self.state.fresh(key, now)
        if entry is None:
            if key in self.state.entries:
                await self.apply(CacheEvicted(key=key, reason=EXPIRED))
            await self.apply(CacheMiss(key=key, request_id=turn.request_id, session_id=turn.session_id))
            slot = CacheSlot(key=key, provider=provider, model=model, cache=self.own)
            await self.providers.send(attrs.evolve(turn, cache=slot))
            return
        await self.apply(CacheHit(key=key, request_id=turn.request_id, session_id=turn.session_id))
        await self._serve(turn, reused(entry.message), tasks)

    def _route(self, request: dict[str, Any]) -> tuple[str, str] | None:
        """The provider the pool tries first and the upstream model it asks there, as the pool works them out."""
        config = self.config
        model = str(request.get("model", ""))
        small = is_small_request(request)
        estimate = InputEstimate(request)
        name = route(
            config.routes,
            config.model_provider,
            model,
            small=small,
            thinking=is_thinking_request(request),
            input_tokens=lambda: estimate.tokens,
        )
        adapter = self.adapters.get(name) if name is not None else None
        if name is None or adapter is None:
            return None
        return name, adapter.upstream_model(model, small=small)

    async def _serve(self, turn: Turn, message: Message, tasks: trio.Nursery) -> None:
        """The whole answer in one item; put straight into the reply channel, which has room for it unless the
        edge has gone (a task waits for room otherwise, so one stuck client never holds up the cache)."""
        await self.recorder.record(
            turn.session_id,
            ResponseCompleted(
                request_id=turn.request_id,
                session_id=turn.session_id,
                provider=CACHE_PROVIDER,
                model=str(turn.request.get("model", "")),
                message=dict(message),
                latency_ms=(time.time_ns() - turn.received_ns) / 1e6,
            ),
        )
        item: Frames | Whole = Whole(message)
        if turn.request.get("stream"):
            item = Frames(encode_events(message_to_events(message)), last=True)
        try:
            turn.reply.send_nowait(item)
        except trio.WouldBlock:
            tasks.start_soon(_send_when_room, turn, item)
            return
        except trio.BrokenResourceError:
            pass  # the client went away
        turn.reply.close()

    async def store(self, offered: CacheStore) -> None:
        slot, message = offered.slot, offered.message
        if offered.provider != slot.provider or not complete(message):
            return
        size = len(orjson.dumps(message))
        if not self.state.fits(size):
            return
        stored = CacheStored(
            key=slot.key,
            request_id=offered.request_id,
            provider=slot.provider,
            model=slot.model,
            message=dict(message),
            size=size,
            expires_at_ms=now_ms() + self.ttl_ms,
        )
        try:
            await self.recorder.record_durably(CACHE_STREAM, stored)
        except Exception as error:  # a store the log could not keep is a store not made; the answer went out
            log.warning("could not keep the answer to %s in the prompt cache: %r", offered.request_id, error)
            return
        self.state.apply(stored)  # only now: an answer is served from the cache only once it is on disk
        for evicted in self.state.evictions(now_ms()):
            await self.apply(evicted)

    async def apply(self, event: CacheHit | CacheMiss | CacheEvicted) -> None:
        self.state.apply(event)
        await self.recorder.record(CACHE_STREAM, event)


async def _send_when_room(turn: Turn, item: Frames | Whole) -> None:
    async with turn.reply:
        with turn.cancel:
            try:
                await turn.reply.send(item)
            except trio.BrokenResourceError:
                pass  # the client went away


def complete(message: Mapping[str, Any]) -> bool:
    """A whole, successful answer: not a refusal, not cut short, not one whose tool input never became JSON."""
    return (
        message.get("type") == "message"
        and message.get("stop_reason") in KEPT_STOP_REASONS
        and bool(message.get("content"))
        and "assembly_error" not in message
    )


def reused(message: Mapping[str, Any]) -> Message:
    """``message`` as a hit serves it: the same id, model and content, its whole input reported as read from the
    cache, as Anthropic reports a prompt it had cached."""
    usage: dict[str, Any] = dict(message.get("usage") or {})
    reused_tokens = sum(
        int(usage.get(field) or 0)
        for field in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
    )
    usage.update(input_tokens=0, cache_creation_input_tokens=0, cache_read_input_tokens=reused_tokens)
    return cast(Message, {**message, "usage": usage})


def gauges(state: CacheState) -> list[GaugeFamily]:
    asked = state.hits + state.misses
    return [
        _gauge("lynkr_prompt_cache_entries", "gauge Answers held in the prompt cache.", len(state.entries)),
        _gauge("lynkr_prompt_cache_bytes", "gauge Bytes of answers (as JSON) held in the prompt cache.", state.bytes),
        _gauge("lynkr_prompt_cache_hits_total", "counter Requests answered from the prompt cache.", state.hits),
        _gauge("lynkr_prompt_cache_misses_total", "counter Requests the prompt cache could not answer.", state.misses),
        _gauge(
            "lynkr_prompt_cache_hit_ratio",
            "gauge Hits over all requests the prompt cache was asked, as recorded in the log.",
            state.hits / asked if asked else 0.0,
        ),
    ]


def _gauge(name: str, kind_and_help: str, value: float) -> GaugeFamily:
    return (name, kind_and_help, [Sample(name=name, value=value)])
