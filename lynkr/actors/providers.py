"""The provider pool: one httpx client per upstream, routing, retries, circuit breakers and fallback.

Each turn runs as its own task inside the turn's cancel scope, so a client that goes away ends the upstream
request at once.  Retries and fallback happen only before the first event reaches the client; after that a
failure becomes an SSE ``error`` event.

Each provider gets the request fitted to its limits (:mod:`lynkr.upstream.fitting`); a refusal that names a limit
(an output ceiling, a context window, an unknown beta flag) is answered once with a refitted request, or, when
the input cannot fit, by moving on to the next provider in the chain.

A streaming client is sent each upstream read as SSE bytes (``Frames``): an Anthropic-native upstream's own
bytes, unparsed and not re-encoded, or the converted events framed together.  The pool parses a copy beside
them and folds it into the message the log keeps.  A non-streaming client is sent that folded message once
(``Whole``); when it asks for at most ``json_upstream_max_tokens`` the upstream is asked for one JSON body
instead of a stream, which saves parsing a stream where no first-byte timeout could trip.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack
from typing import Any

import attrs
import httpx
import orjson
import trio

from lynkr.actors.messages import CacheStore, CountTokens, ErrorReply, Events, Frames, Turn, Whole
from lynkr.actors.recorder import Recorder
from lynkr.actors.runtime import answer
from lynkr.config import Config, nothing_configured_hint
from lynkr.errors import LynkrError, NotConfigured, Overloaded
from lynkr.events.catalog import ResponseCompleted, ResponseFailed, UpstreamAttempted
from lynkr.providers.base import Adapter, tool_id_scheme_of
from lynkr.providers.registry import adapter_for
from lynkr.upstream.attempt import Capture, Read, StreamBroken, UpstreamStatus, open_attempt
from lynkr.upstream.breaker import CircuitBreaker
from lynkr.upstream.fitting import (
    Fitted,
    InputEstimate,
    Lesson,
    MoveOn,
    ProviderLimits,
    Retry,
    TooLong,
    fit,
    limits_for,
    react,
    too_long_error,
)
from lynkr.upstream.learned import LIMITS_STREAM, LimitsBook
from lynkr.upstream.limits import read_rejection
from lynkr.upstream.recording import UpstreamResponded, packed_sizes
from lynkr.upstream.retry import NO_FALLBACK_STATUSES, RETRYABLE_STATUSES, backoff_s, retry_after_s
from lynkr.upstream.routing import chain, route
from lynkr.wire.anthropic import MessageAssembler, is_small_request, is_thinking_request, message_as_logged
from lynkr.wire.sse import encode_events
from lynkr.wire.tokens import estimate_tokens

log = logging.getLogger("lynkr.providers")

FLUSH_AFTER_S = 0.001  # longest a streaming client's frames wait in the reply channel while more are converted

Message = Turn | CountTokens


@attrs.frozen(kw_only=True)
class Upstream:
    adapter: Adapter
    client: httpx.AsyncClient
    breaker: CircuitBreaker


class _Failure(Exception):
    """Every provider in the chain failed; ``reply`` is what the client gets."""

    def __init__(self, reply: ErrorReply) -> None:
        super().__init__(reply.status)
        self.reply = reply


def breakers_for(config: Config) -> dict[str, CircuitBreaker]:
    """One breaker per provider.  They belong to the daemon, so a restarted pool keeps what it learnt."""
    return {
        name: CircuitBreaker(failure_threshold=config.breaker_failure_threshold, reset_s=config.breaker_reset_s)
        for name in config.providers
    }


class Pool:
    """What one incarnation of the provider actor owns; ``learned`` is the daemon's and outlives it."""

    def __init__(self, config: Config, upstreams: Mapping[str, Upstream], *, learned: LimitsBook) -> None:
        self.config = config
        self.upstreams = upstreams
        self.learned = learned
        self.limits = limits_for(config)  # checked when the daemon started, so it cannot fail here

    def chain_for(self, request: Mapping[str, Any], estimate: InputEstimate) -> list[str]:
        return chain(self.config, self._route(request, estimate), lambda name: name in self.upstreams)

    def _route(self, request: Mapping[str, Any], estimate: InputEstimate) -> str:
        name = route(
            self.config.routes,
            self.config.model_provider,
            str(request.get("model", "")),
            small=is_small_request(request),
            thinking=is_thinking_request(request),
            input_tokens=lambda: estimate.tokens,
        )
        if name is None or name not in self.upstreams:
            raise NotConfigured(nothing_configured_hint())
        return name

    def fit(self, name: str, turn: Turn, *, small: bool, estimate: InputEstimate) -> Fitted | TooLong:
        return fit(
            name,
            self.upstreams[name].adapter,
            self.limits.get(name, ProviderLimits()),
            self.learned.state,
            turn.request,
            turn.headers,
            small=small,
            estimate=estimate,
        )


async def run(
    config: Config,
    inbox: trio.MemoryReceiveChannel[Message],
    *,
    recorder: Recorder,
    breakers: Mapping[str, CircuitBreaker],
    learned: LimitsBook,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    async with AsyncExitStack() as stack:
        upstreams: dict[str, Upstream] = {}
        for name, provider in config.providers.items():
            adapter = adapter_for(provider)
            client = await stack.enter_async_context(
                httpx.AsyncClient(
                    http2=adapter.http2,
                    timeout=httpx.Timeout(
                        connect=config.connect_timeout_s,
                        read=config.idle_timeout_s,
                        write=config.idle_timeout_s,
                        pool=config.connect_timeout_s,
                    ),
                    # Keep-alive as large as the pool: httpcore closes an idle connection whenever the pool holds
                    # more connections than max_keepalive_connections (all of them counted, not just idle ones),
                    # which under concurrency above it means a new upstream connection for most requests.
                    limits=httpx.Limits(max_connections=256, max_keepalive_connections=256, keepalive_expiry=30),
                )
            )
            upstreams[name] = Upstream(adapter=adapter, client=client, breaker=breakers[name])
        pool = Pool(config, upstreams, learned=learned)
        async with inbox, trio.open_nursery() as nursery:
            task_status.started()
            async for message in inbox:
                if isinstance(message, Turn):
                    nursery.start_soon(_serve_turn, pool, recorder, message)
                else:
                    nursery.start_soon(answer, message.reply_to, lambda m=message: _count_tokens(pool, m))


async def _serve_turn(pool: Pool, recorder: Recorder, turn: Turn) -> None:
    state = _TurnState()
    provider: str | None = None
    async with turn.reply:
        with turn.cancel:
            try:
                provider, assembler = await _stream_through_chain(pool, recorder, turn, state)
                if turn.request.get("stream"):
                    message = message_as_logged(assembler)
                else:
                    # An answer whose tool arguments never became JSON is an error for this client, not a message.
                    whole = assembler.message()
                    message = dict(whole)
                    await turn.reply.send(Whole(whole))
            except _Failure as failure:
                await _fail(recorder, turn, failure.reply, state)
                return
            except LynkrError as error:
                reply = ErrorReply(status=error.status, body=orjson.dumps(error.body(turn.request_id)))
                await _fail(recorder, turn, reply, state)
                return
            except trio.BrokenResourceError:
                turn.cancel.cancel()  # the edge stopped listening: same as a disconnect
            else:
                await recorder.record(
                    turn.session_id,
                    ResponseCompleted(
                        request_id=turn.request_id,
                        session_id=turn.session_id,
                        provider=provider,
                        model=str(turn.request.get("model", "")),
                        message=message,
                        latency_ms=(time.time_ns() - turn.received_ns) / 1e6,
                    ),
                )
                if turn.cache is not None:
                    slot = turn.cache
                    await slot.cache.send(
                        CacheStore(slot=slot, provider=provider, request_id=turn.request_id, message=message)
                    )
                return
        if turn.cancel.cancelled_caught or provider is None:
            with trio.CancelScope(shield=True):
                await recorder.record(
                    turn.session_id,
                    ResponseFailed(
                        request_id=turn.request_id,
                        session_id=turn.session_id,
                        status=499,
                        error_type="client_disconnected",
                        message="the client disconnected; the upstream request was cancelled",
                    ),
                )


@attrs.define
class _TurnState:
    started: bool = False  # an event reached the client; no more retries or fallback


async def _fail(recorder: Recorder, turn: Turn, reply: ErrorReply, state: _TurnState) -> None:
    try:
        parsed = orjson.loads(reply.body)
        error = parsed.get("error", {}) if isinstance(parsed, dict) else {}
    except orjson.JSONDecodeError:
        error = {}
    await recorder.record(
        turn.session_id,
        ResponseFailed(
            request_id=turn.request_id,
            session_id=turn.session_id,
            status=reply.status,
            error_type=str(error.get("type", "api_error")),
            message=str(error.get("message", ""))[:2000],
        ),
    )
    try:
        await turn.reply.send(reply)
    except trio.BrokenResourceError:
        pass


async def _stream_through_chain(
    pool: Pool, recorder: Recorder, turn: Turn, state: _TurnState
) -> tuple[str, MessageAssembler]:
    """The provider that answered, and its answer folded; a streaming client has been sent it as it came."""
    config = pool.config
    small = is_small_request(turn.request)
    estimate = InputEstimate(turn.request)
    client_streams = bool(turn.request.get("stream"))
    # A long answer as one JSON body would send its first byte only once it is complete.
    upstream_streams = client_streams or int(turn.request["max_tokens"]) > config.json_upstream_max_tokens
    last: ErrorReply | None = None
    too_long: list[TooLong] = []
    for name in pool.chain_for(turn.request, estimate):
        upstream = pool.upstreams[name]
        fitted = pool.fit(name, turn, small=small, estimate=estimate)
        if isinstance(fitted, TooLong):
            too_long.append(fitted)
            continue
        adjusted: set[str] = set()  # limits already fitted after a refusal; each gets one retry
        for attempt in itertools.count(1):
            if not upstream.breaker.allows(trio.current_time()):
                last = last or _circuit_open(name, turn.request_id)
                break
            started_at = time.perf_counter()
            assembler = MessageAssembler()
            capture = Capture()
            try:
                async with open_attempt(
                    upstream.client,
                    upstream.adapter,
                    fitted.request,
                    headers=fitted.headers,
                    small=small,
                    stream=upstream_streams,
                    first_byte_timeout_s=config.first_byte_timeout_s,
                    capture=capture,
                ) as reads:
                    if client_streams:
                        await _forward(reads, assembler, turn, state, capture.sent)
                    else:
                        await _fold(reads, assembler, state)
            except (UpstreamStatus, StreamBroken, httpx.TransportError, trio.TooSlowError) as error:
                failure = _classify(error, name, config, turn.request_id)
                reaction = _limit_reaction(error, fitted, adjusted, state)
                await _responded(recorder, turn, name, upstream.adapter, attempt, capture, complete=False)
            else:
                upstream.breaker.succeeded()
                await _responded(recorder, turn, name, upstream.adapter, attempt, capture, complete=True)
                await _attempted(recorder, turn, name, attempt, 200, started_at, None, False)
                return name, assembler
            if reaction is not None:
                await _learn(pool, recorder, reaction.lessons)
                retry = isinstance(reaction, Retry)
                await _attempted(recorder, turn, name, attempt, failure.status, started_at, failure.message, retry)
                if isinstance(reaction, Retry):
                    adjusted.add(reaction.kind)
                    fitted = reaction.fitted
                    continue
                too_long.append(reaction.too_long)
                break
            if failure.upstream_at_fault:
                upstream.breaker.failed(trio.current_time())
            will_retry = failure.retryable and not state.started and attempt - len(adjusted) <= config.max_retries
            await _attempted(recorder, turn, name, attempt, failure.status, started_at, failure.message, will_retry)
            if state.started or failure.final:
                raise _Failure(failure.reply)
            last = failure.reply
            if not will_retry:
                break
            await trio.sleep(failure.wait_s if failure.wait_s is not None else _backoff(config, attempt))
    if too_long and last is None:
        raise too_long_error(too_long, estimate.tokens)
    raise _Failure(last or _circuit_open("every provider", turn.request_id))


def _limit_reaction(
    error: Exception, fitted: Fitted, adjusted: set[str], state: _TurnState
) -> Retry | MoveOn | None:
    """A refusal that names a limit, answered before the client saw anything: fit once more, or move on."""
    if state.started or not isinstance(error, UpstreamStatus):
        return None
    rejection = read_rejection(error.status, error.body)
    if rejection is None:
        return None
    reaction = react(fitted, rejection)
    if isinstance(reaction, Retry) and reaction.kind in adjusted:
        return None  # fitted once already and refused again: the refusal goes to the client
    return reaction


async def _learn(pool: Pool, recorder: Recorder, lessons: tuple[Lesson, ...]) -> None:
    # Durably: a lesson is rare and must outlive a kill -9, or the next daemon meets the same refusal again.
    for lesson in lessons:
        pool.learned.learn(lesson)
        await recorder.record_durably(LIMITS_STREAM, lesson)


async def _forward(
    reads: AsyncIterator[Read], assembler: MessageAssembler, turn: Turn, state: _TurnState, sent: list[bytes]
) -> None:
    """Each read to a streaming client as SSE bytes: the upstream's own where they can go as they are.

    Frames are queued without a checkpoint while the reply channel has room.  httpx hands over an upstream's
    HTTP chunks one by one, even the hundreds that one socket read brought; queued this way they are all
    converted before the edge wakes, and the edge writes them to the client together (``_stream_reply``).
    Yielding after each would cost a task switch and a socket write per chunk.  The first frame, and any
    frame after ``FLUSH_AFTER_S`` of work without a yield, is sent with a checkpoint, so the client's first
    bytes never wait for a whole burst to be converted.  ``sent`` keeps the SSE bytes for the log (an agent
    loop's rounds go to it as events, relayed, and keep none).
    """
    feed = assembler.feed
    for_client = turn.reply
    yielded_at = -FLUSH_AFTER_S
    frames: Frames | Events
    async for read in reads:
        events = read.events
        for event in events:
            feed(event)
        if turn.events:
            frames = Events(events)
        else:
            data = read.verbatim if read.verbatim is not None else encode_events(events)
            sent.append(data)
            frames = Frames(data, events[-1].get("type") == "message_stop")
        if time.perf_counter() - yielded_at < FLUSH_AFTER_S:
            try:
                for_client.send_nowait(frames)
            except trio.WouldBlock:
                pass
            else:
                state.started = True
                continue
        await for_client.send(frames)
        state.started = True
        yielded_at = time.perf_counter()


async def _fold(reads: AsyncIterator[Read], assembler: MessageAssembler, state: _TurnState) -> None:
    """A non-streaming client's answer, folded as it arrives; it leaves in one piece once complete."""
    feed = assembler.feed
    async for read in reads:
        for event in read.events:
            feed(event)
        state.started = True  # content arrived: as for a streaming client, a failure from here on is not retried


@attrs.frozen(kw_only=True)
class _AttemptFailure:
    reply: ErrorReply
    message: str
    status: int | None  # what the upstream answered, None when nothing came back
    retryable: bool
    upstream_at_fault: bool  # counts against the provider's circuit breaker
    final: bool  # the request itself is wrong: no other provider would take it either
    wait_s: float | None = None  # what the upstream asked us to wait


def _classify(
    error: UpstreamStatus | StreamBroken | httpx.TransportError | trio.TooSlowError,
    name: str,
    config: Config,
    request_id: str,
) -> _AttemptFailure:
    if isinstance(error, UpstreamStatus):
        retryable = error.status in RETRYABLE_STATUSES
        return _AttemptFailure(
            reply=ErrorReply(
                status=error.status, body=error.anthropic_body(request_id), headers=_passthrough(error)
            ),
            message=str(error),
            status=error.status,
            retryable=retryable,
            upstream_at_fault=retryable,
            final=error.status in NO_FALLBACK_STATUSES,
            wait_s=retry_after_s(error.headers) if retryable else None,
        )
    if isinstance(error, StreamBroken):
        return _AttemptFailure(
            reply=ErrorReply(status=error.status, body=error.anthropic_body(request_id)),
            message=str(error),
            status=200,
            retryable=True,
            upstream_at_fault=True,
            final=False,
        )
    message = _transport_message(name, error, config.first_byte_timeout_s)
    timeout = isinstance(error, (trio.TooSlowError, httpx.TimeoutException))
    body = {
        "type": "error",
        "error": {"type": "timeout_error" if timeout else "api_error", "message": message},
        "request_id": request_id,
    }
    return _AttemptFailure(
        reply=ErrorReply(status=504 if timeout else 502, body=orjson.dumps(body)),
        message=message,
        status=None,
        retryable=True,
        upstream_at_fault=True,
        final=False,
    )


def _backoff(config: Config, attempt: int) -> float:
    return backoff_s(attempt, initial_s=config.retry_backoff_initial_s, max_s=config.retry_backoff_max_s)


def _circuit_open(name: str, request_id: str) -> ErrorReply:
    error = Overloaded(f"provider {name!r} is failing and its circuit breaker is open; retry shortly")
    return ErrorReply(status=error.status, body=orjson.dumps(error.body(request_id)))


def _passthrough(error: UpstreamStatus) -> tuple[tuple[bytes, bytes], ...]:
    kept = []
    for name in ("retry-after", "retry-after-ms", "x-should-retry"):
        value = error.headers.get(name)
        if value is not None:
            kept.append((name.encode(), value.encode("latin-1")))
    return tuple(kept)


def _transport_message(name: str, error: Exception, first_byte_timeout_s: float) -> str:
    if isinstance(error, trio.TooSlowError):
        return f"provider {name!r} sent no response within {first_byte_timeout_s:g} s (LYNKR_FIRST_BYTE_TIMEOUT_S)"
    if isinstance(error, httpx.ConnectError):
        return f"cannot connect to provider {name!r}: {error}; check its endpoint and that it is running"
    if isinstance(error, httpx.TimeoutException):
        return f"provider {name!r} timed out: {type(error).__name__}"
    return f"provider {name!r} failed: {type(error).__name__}: {error}"


async def _attempted(
    recorder: Recorder,
    turn: Turn,
    provider: str,
    attempt: int,
    status: int | None,
    started_at: float,
    error: str | None,
    will_retry: bool,
) -> None:
    await recorder.record(
        turn.session_id,
        UpstreamAttempted(
            request_id=turn.request_id,
            provider=provider,
            attempt=attempt,
            status=status,
            latency_ms=(time.perf_counter() - started_at) * 1000,
            error=error,
            will_retry=will_retry,
        ),
    )


async def _responded(
    recorder: Recorder, turn: Turn, name: str, adapter: Adapter, attempt: int, capture: Capture, *, complete: bool
) -> None:
    """The attempt's raw answer, for ``lynkr replay --check``; nothing when no answer started (an error status)."""
    if capture.conversion is None or not capture.reads:
        return
    conversion = capture.conversion
    body = b"".join(capture.reads)
    await recorder.record(
        turn.session_id,
        UpstreamResponded(
            request_id=turn.request_id,
            provider=name,
            kind=adapter.kind,
            attempt=attempt,
            wire=conversion.wire,
            streamed=capture.streamed,
            complete=complete,
            message_id=conversion.message_id,
            model=conversion.model,
            input_tokens=conversion.input_tokens,
            tool_ids=tool_id_scheme_of(adapter),
            reads=packed_sizes(capture.reads),
            size=len(body),
            body=body,
            sent=b"".join(capture.sent),
        ),
    )


async def _count_tokens(pool: Pool, message: CountTokens) -> int:
    """Ask an Anthropic-native upstream that can count; otherwise estimate offline."""
    try:
        name = pool.chain_for(message.request, InputEstimate(message.request))[0]
    except NotConfigured:
        return estimate_tokens(message.request)
    upstream = pool.upstreams[name]
    url = upstream.adapter.count_tokens_url()
    if url is None:
        return estimate_tokens(message.request)
    model = upstream.adapter.upstream_model(str(message.request["model"]), small=is_small_request(message.request))
    try:
        with trio.fail_after(pool.config.first_byte_timeout_s):
            response = await upstream.client.post(
                url,
                content=orjson.dumps({**message.request, "model": model}),
                headers=upstream.adapter.headers(message.headers),
            )
        if response.status_code == 200:
            return int(response.json()["input_tokens"])
        log.info("count_tokens upstream answered %d; estimating offline", response.status_code)
    except (httpx.HTTPError, trio.TooSlowError, KeyError, ValueError, TypeError) as error:
        log.info("count_tokens upstream failed (%s); estimating offline", error)
    return estimate_tokens(message.request)
