"""The daemon: opens the log, starts the actors in order, serves, and shuts down gracefully.

Start-up order is dependency order: derived state (sessions, skills, the prompt cache's table, learned limits,
the splice table) is rebuilt from snapshots and the log first, in one pass, then the recorder starts (everyone
records), then the projector that keeps derived state live, the provider pool, the prompt cache (it hands misses
to the pool), the reflector (it follows the recorder's records and may ask the pool to phrase a skill), the tool
worker (its tool summaries ask the pool), the session actor (its agent loop asks both), and last the HTTP edge,
so nothing is accepted before it can be served.
Shutdown runs the other way: the edge stops accepting and lets in-flight streams finish up to the grace
deadline, the actors are cancelled, and the recorder drains its mailbox into a final durable batch before the log closes.
"""

from __future__ import annotations

import errno
import logging
import os
import signal
import socket
import time
from collections.abc import Mapping
from functools import partial
from pathlib import Path
from typing import Any

import attrs
import trio

from lynkr import __version__
from lynkr.actors import cache, edge, indexer, mcp, projector, providers, recorder, reflector, session, tools
from lynkr.actors.messages import CacheMessage, RunTool, Turn
from lynkr.actors.projector import LiveState
from lynkr.actors.providers import breakers_for
from lynkr.actors.recorder import Recorder
from lynkr.actors.runtime import (
    ActorEscalation,
    ActorStatistics,
    Crash,
    Mailbox,
    ReplyTo,
    RestartPolicy,
    Supervisor,
    ask,
)
from lynkr.agent.splice import SpliceTable
from lynkr.cache import lru
from lynkr.config import Config, ConfigError
from lynkr.datadir import DAEMON_STREAM, StartupError, daemon_lock, open_store
from lynkr.events.catalog import ActorCrashed, ActorEscalated, DaemonStarted, DaemonStopped
from lynkr.events.lmdb_store import LmdbEventStore
from lynkr.events.scrub import Scrubber
from lynkr.events.snapshots import (
    DERIVED_STATE,
    LEARNED_LIMITS_STATE,
    PROMPT_CACHE_STATE,
    SKILLS_STATE,
    SPLICES_STATE,
    rebuild,
)
from lynkr.http.app import App, EdgeDependencies, GaugeFamily, ModelEntry
from lynkr.http.guard import RequestGuard
from lynkr.http.metrics import Sample
from lynkr.index.handle import IndexHandle
from lynkr.index.inject import RepoMapContext
from lynkr.index.metrics import index_gauges
from lynkr.index.store import IndexStore
from lynkr.index.symbols import IndexReader
from lynkr.mcp.endpoint import SESSION_ID as MCP_SESSION_ID
from lynkr.mcp.endpoint import McpEndpoint
from lynkr.mcp.manifest import discover
from lynkr.reflect.inject import SkillsContext
from lynkr.reflect.skills import SkillsState
from lynkr.tools.runner import Outcome, Toolbox
from lynkr.tools.toolbox import build_toolbox
from lynkr.upstream.fitting import InvalidProviderOption, limits_for
from lynkr.upstream.learned import LimitsBook

log = logging.getLogger("lynkr")



@attrs.frozen(kw_only=True)
class Running:
    """What a started daemon reports: where it listens and how to stop it."""

    base_url: str
    data_dir: Path
    stop: trio.Event
    # Each actor's mailbox by actor name, to look at (statistics) or, in tests, to put a message in.
    mailboxes: Mapping[str, Mailbox[Any]] = attrs.field(factory=dict)
    # Sessions (and every other DerivedState) folded from the log, kept live by the projector.
    derived: LiveState = attrs.field(factory=lambda: LiveState(states={}, last_seq=0))
    # Every tool the daemon runs (MCP servers' tools appear in its registry as they come up), and the MCP bridge.
    toolbox: Toolbox | None = None
    bridge: mcp.Bridge | None = None


def bind_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(1024)
    except OSError as error:
        sock.close()
        if error.errno == errno.EADDRINUSE:
            raise StartupError(
                f"port {port} on {host} is already in use; stop the other process or set PORT to a free port"
            ) from None
        raise StartupError(f"cannot listen on {host}:{port}: {error.strerror}; check LYNKR_HOST and PORT") from None
    sock.setblocking(False)
    return sock


def routed_models(config: Config) -> tuple[ModelEntry, ...]:
    """The model ids the CLI may ask for, each with where lynkr sends it."""
    claude_ids = (
        "claude-opus-5-5",
        "claude-sonnet-5-5",
        "claude-haiku-5-5",
        "claude-opus-4-8",
        "claude-sonnet-5",
        "claude-sonnet-4-5-20250929",
        "claude-haiku-4-5-20251001",
    )
    entries: dict[str, ModelEntry] = {}
    for provider in config.providers.values():
        for key in provider.models:
            if key not in ("main", "small") and "*" not in key:
                entries.setdefault(key, ModelEntry(id=key, display_name=f"{key} via {provider.name}"))
    if config.model_provider is not None:
        for model_id in claude_ids:
            entries.setdefault(model_id, ModelEntry(id=model_id, display_name=f"{model_id} via {config.model_provider}"))
    return tuple(entries.values())


async def run_daemon(
    config: Config,
    *,
    install_signal_handlers: bool = False,
    task_status: trio.TaskStatus[Running] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run lynkr until ``Running.stop`` is set (or SIGINT/SIGTERM with ``install_signal_handlers``)."""
    try:
        limits_for(config)
    except InvalidProviderOption as error:
        raise ConfigError(str(error)) from None
    with daemon_lock(config.data_dir):
        store = open_store(config.data_dir, map_size=config.log_map_size_bytes)
        # The index is derived state in an environment of its own (see lynkr.index.store).
        index_store = IndexStore.open(config.data_dir) if config.index.enabled else None
        try:
            listening = bind_socket(config.host, config.port)
            with listening:
                daemon = _Daemon(config, store, listening, index_store)
                await daemon.serve(install_signal_handlers=install_signal_handlers, task_status=task_status)
        finally:
            store.close()
            if index_store is not None:
                index_store.close()


class _Daemon:
    def __init__(
        self, config: Config, store: LmdbEventStore, listening: socket.socket, index_store: IndexStore | None
    ) -> None:
        self.config = config
        self.store = store
        self.index_store = index_store
        self.index_mailbox: Mailbox[indexer.Message] = Mailbox(4)
        self.index = (
            IndexHandle(reader=IndexReader(index_store), rebuild=partial(indexer.request_rebuild, self.index_mailbox))
            if index_store is not None
            else None
        )
        self.listening = listening
        self.policy = RestartPolicy(
            max_restarts=config.supervisor_max_restarts,
            window_s=config.supervisor_window_s,
            backoff_initial_s=config.restart_backoff_initial_s,
            backoff_max_s=config.restart_backoff_max_s,
        )
        self.recorder_mailbox: Mailbox[recorder.Append] = Mailbox(config.mailbox_capacity * 16)
        self.recorder = Recorder(self.recorder_mailbox, recorder.Hub())
        self.provider_mailbox: Mailbox[providers.Message] = Mailbox(config.mailbox_capacity)
        self.session_mailbox: Mailbox[Turn] = Mailbox(config.mailbox_capacity)
        self.tools_mailbox: Mailbox[RunTool] = Mailbox(config.mailbox_capacity)
        self.supervisors: list[Supervisor] = []
        self.breakers = breakers_for(config)
        # What upstreams' refusals taught earlier runs; like the breakers, it outlives a pool restart.  Both it and
        # the prompt cache's table are filled from the rebuilt derived state before any actor starts (serve).
        self.learned_limits = LimitsBook()
        self.cache_mailbox: Mailbox[CacheMessage] = Mailbox(config.mailbox_capacity)
        # The cache actor's table, kept across its restarts.
        self.prompt_cache = lru.CacheState(
            max_entries=config.prompt_cache.max_entries, max_bytes=config.prompt_cache.max_bytes
        )
        self.ready = False
        self._nursery: trio.Nursery | None = None
        self.derived = LiveState(states={}, last_seq=0)
        self.toolbox = build_toolbox(config)
        workspace = config.workspace_root.resolve()
        self.bridge = mcp.Bridge(
            config.mcp,
            discovered=discover(config.mcp, workspace),
            registry=self.toolbox.registry,
            recorder=self.recorder,
            workspace=workspace,
        )
        self.mcp_endpoint = McpEndpoint(toolbox=self.toolbox, run_tool=self._run_tool_for_mcp)

    async def serve(self, *, install_signal_handlers: bool, task_status: trio.TaskStatus[Running]) -> None:
        # Derived state is rebuilt before anything records: from snapshots and the log's tail, in a thread.
        rebuilt = await trio.to_thread.run_sync(rebuild, self.store)
        snapshot_seq = min((origin.snapshot_seq or 0 for origin in rebuilt.origins), default=0)
        self.derived = LiveState(states=rebuilt.states, last_seq=rebuilt.last_seq, snapshot_seq=snapshot_seq)
        log.info("rebuilt derived state from %d events of the log in %.2f s", rebuilt.events_folded, rebuilt.seconds)
        self.learned_limits.state = rebuilt.states[LEARNED_LIMITS_STATE.name]
        # Still holding what expired while the daemon was down: the cache actor records those evictions at start.
        self.prompt_cache = lru.restored(rebuilt.states[PROMPT_CACHE_STATE.name], self.config.prompt_cache)
        if not self.config.prompt_cache.active:
            # No actor will run to record them; /metrics still reports only what is valid.
            for evicted in self.prompt_cache.evictions(cache.now_ms()):
                self.prompt_cache.apply(evicted)
        async with trio.open_nursery() as core:
            self._nursery = core
            await self._supervisor(core).start(
                "recorder",
                recorder.run,
                self.store,
                mailbox=self.recorder_mailbox,
                scrubber=Scrubber(self.config.secrets()),
                hub=self.recorder.hub,
                batch_max=self.config.recorder_batch_max,
                commit_delay_s=self.config.recorder_commit_delay_s,
            )
            try:
                await self.recorder.record_durably(
                    DAEMON_STREAM,
                    DaemonStarted(version=__version__, pid=os.getpid(), config=self.config.masked()),
                )
                reason = await self._serve_actors(install_signal_handlers, task_status)
                with trio.CancelScope(shield=True):
                    await self.recorder.record_durably(DAEMON_STREAM, DaemonStopped(reason=reason))
            finally:
                # The recorder drains what is queued into a last durable batch, then returns.
                self.recorder_mailbox.close()

    async def _serve_actors(self, install_signal_handlers: bool, task_status: trio.TaskStatus[Running]) -> str:
        config = self.config
        stop = trio.Event()
        edge_stop = trio.Event()
        app = App(
            EdgeDependencies(
                sessions=self.session_mailbox,
                providers=self.provider_mailbox,
                models=routed_models(config),
                api_key=config.api_key.reveal() if config.api_key is not None else None,
                max_body_bytes=config.max_body_bytes,
                actor_statistics=self.statistics,
                extra_gauges=self.gauges,
                provider_states=self.provider_states,
                ready=lambda: self.ready,
                guard=RequestGuard(
                    config.guard,
                    bound=self.listening.getsockname()[:2],
                    record=partial(self.recorder.record, DAEMON_STREAM),
                ),
                mcp=self.mcp_endpoint,
                mcp_servers=lambda: {"servers": self.bridge.snapshot()},
            )
        )
        async with trio.open_nursery() as actors:
            if install_signal_handlers:
                # Before anything else starts: a SIGTERM that comes once /health answers must find the handler.
                await actors.start(_stop_on_signal, stop)
            supervisor = self._supervisor(actors)
            await supervisor.start(
                "projector", projector.run, self.store, self.recorder.hub, DERIVED_STATE, self.derived,
                interval_s=config.snapshots.interval_s,
            )
            await supervisor.start(
                "providers",
                providers.run,
                config,
                mailbox=self.provider_mailbox,
                recorder=self.recorder,
                breakers=self.breakers,
                learned=self.learned_limits,
            )
            if config.prompt_cache.active:
                await supervisor.start(
                    "cache",
                    cache.run,
                    config,
                    mailbox=self.cache_mailbox,
                    state=self.prompt_cache,
                    own=self.cache_mailbox,
                    providers=self.provider_mailbox,
                    recorder=self.recorder,
                )
            if config.reflector.enabled:
                await supervisor.start(
                    "reflector", reflector.run, config.reflector, store=self.store, hub=self.recorder.hub,
                    recorder=self.recorder, skills=self._skills, providers=self.provider_mailbox,
                )
            if self.index is not None and self.index_store is not None:
                await supervisor.start(
                    "indexer", indexer.run, config, mailbox=self.index_mailbox, store=self.index_store,
                    reader=self.index.reader, recorder=self.recorder,
                )
            specs = await supervisor.start(
                "tools",
                tools.run,
                config,
                mailbox=self.tools_mailbox,
                store=self.store,
                recorder=self.recorder,
                providers=self.provider_mailbox,
                toolbox=self.toolbox,
                index=self.index,
            )
            await supervisor.start(
                "session",
                session.run,
                mailbox=self.session_mailbox,
                providers=self.provider_mailbox,
                recorder=self.recorder,
                agent=session.AgentSetup(
                    config=config, tools=self.tools_mailbox, specs=specs, store=self.store, toolbox=self.toolbox,
                    splices=self._splices,
                    context=session.chained(
                        RepoMapContext(self.index.reader, config.index.repo_map_tokens)
                        if self.index is not None and config.index.repo_map_in_requests
                        else None,
                        SkillsContext(self._skills, self.recorder, config.reflector.tokens, time.time_ns)
                        if config.reflector.in_requests
                        else None,
                    ),
                ),
                cache=self.cache_mailbox if config.prompt_cache.active else None,
            )
            # Reports ready at once: MCP servers come up in the background and never delay /health.
            await supervisor.start("mcp", mcp.run, self.bridge)
            await supervisor.start("mcp_endpoint", self.mcp_endpoint.run)
            await supervisor.start(
                "edge", edge.run, app, self.listening, graceful_timeout_s=config.shutdown_grace_s, stop=edge_stop
            )
            self.ready = True
            task_status.started(
                Running(
                    base_url=base_url(self.listening),
                    data_dir=config.data_dir,
                    stop=stop,
                    derived=self.derived,
                    mailboxes={
                        "recorder": self.recorder_mailbox,
                        "providers": self.provider_mailbox,
                        "session": self.session_mailbox,
                        "tools": self.tools_mailbox,
                        "cache": self.cache_mailbox,
                        "indexer": self.index_mailbox,
                    },
                    toolbox=self.toolbox,
                    bridge=self.bridge,
                )
            )
            await stop.wait()
            self.ready = False
            edge_stop.set()
            # hypercorn closes its duplicate of the socket when it stops accepting; while this original stays
            # open the kernel would keep completing handshakes into a backlog nobody serves.
            self.listening.close()
            # hypercorn lets in-flight streams finish up to its graceful timeout, then returns.
            with trio.move_on_after(config.shutdown_grace_s + 1):
                await supervisor.wait_finished("edge")
            actors.cancel_scope.cancel()
        return "shutdown requested"

    def _skills(self) -> SkillsState:
        """The live skill set, as the projector keeps it."""
        state: SkillsState = self.derived.states[SKILLS_STATE.name]
        return state

    def _splices(self) -> tuple[SpliceTable, int]:
        """The splice table as the projector has it now, and the last sequence number it has folded."""
        table: SpliceTable = self.derived.states[SPLICES_STATE.name]
        return table, self.derived.last_seq

    async def _run_tool_for_mcp(self, name: str, tool_use_id: str, arguments: Mapping[str, Any]) -> Outcome:
        """A call that came in through ``/mcp``, run by the tool worker like the agent loop's calls."""
        cancel = trio.CancelScope()

        def message(reply_to: ReplyTo[Outcome]) -> RunTool:
            return RunTool(
                session_id=MCP_SESSION_ID,
                request_id=tool_use_id,
                model=self.config.model_default or "",
                tool_use_id=tool_use_id,
                name=name,
                arguments=arguments,
                reply_to=reply_to,
                cancel=cancel,
            )

        try:
            outcome: Outcome = await ask(self.tools_mailbox, message)
            return outcome
        finally:
            cancel.cancel()  # the client went away, or the answer came: either way the call is over

    def _supervisor(self, nursery: trio.Nursery) -> Supervisor:
        supervisor = Supervisor(nursery, policy=self.policy, on_crash=self._crashed, on_escalation=self._escalated)
        self.supervisors.append(supervisor)
        return supervisor

    async def _crashed(self, crash: Crash) -> None:
        cause = _root_cause(crash.error)
        event = ActorCrashed(
            actor=crash.actor,
            error_type=type(cause).__name__,
            message=str(cause),
            traceback=crash.traceback,
            restarts=crash.restarts,
        )
        if crash.actor == "recorder":
            # Its successor takes the event from the mailbox; waiting here would wait for ourselves.
            assert self._nursery is not None
            self._nursery.start_soon(self.recorder.record, DAEMON_STREAM, event)
        else:
            with trio.move_on_after(1):
                await self.recorder.record(DAEMON_STREAM, event)

    async def _escalated(self, escalation: ActorEscalation) -> None:
        event = ActorEscalated(actor=escalation.actor, crashes=escalation.crashes, window_s=escalation.window_s)
        # Bounded: the actor that escalated may be the recorder itself.
        with trio.move_on_after(1):
            await self.recorder.record(DAEMON_STREAM, event)
            await self.recorder.record_durably(DAEMON_STREAM, DaemonStopped(reason=str(escalation)))

    def provider_states(self) -> dict[str, dict[str, Any]]:
        return {
            name: {"breaker": breaker.state, "consecutive_failures": breaker.failures}
            for name, breaker in self.breakers.items()
        }

    def statistics(self) -> list[ActorStatistics]:
        return [actor for supervisor in self.supervisors for actor in supervisor.statistics()]

    def gauges(self) -> list[GaugeFamily]:
        store_stats = self.store.stats()
        rec_stats = self.recorder.statistics()
        families: list[GaugeFamily] = [
            _gauge("lynkr_eventlog_events_total", "counter Events appended to the log since start-up.",
                   rec_stats.events),
            _gauge("lynkr_eventlog_batches_total", "counter Durable append transactions since start-up.",
                   rec_stats.batches),
            _gauge("lynkr_eventlog_append_rate", "gauge Events appended per second over the last minute.",
                   rec_stats.recent_rate),
            _gauge("lynkr_eventlog_size_bytes", "gauge Bytes the event log occupies on disk.",
                   store_stats.bytes_on_disk),
            _gauge("lynkr_eventlog_last_seq", "gauge The newest sequence number in the log.", store_stats.last_seq),
        ]
        families.append(
            (
                "lynkr_provider_breaker_open",
                "gauge 1 when the provider's circuit breaker is open.",
                [
                    Sample(name="lynkr_provider_breaker_open", value=float(breaker.state != "closed"),
                           labels=(("provider", name),))
                    for name, breaker in self.breakers.items()
                ],
            )
        )
        families.extend(cache.gauges(self.prompt_cache))
        if self.index is not None:
            families.extend(index_gauges(self.index.reader))
        return families


def _root_cause(error: BaseException) -> BaseException:
    """The error inside the groups an actor's nurseries wrapped it in: "ExceptionGroup" names nothing."""
    while isinstance(error, BaseExceptionGroup) and len(error.exceptions) == 1:
        error = error.exceptions[0]
    return error


def _gauge(name: str, kind_and_help: str, value: float) -> GaugeFamily:
    return (name, kind_and_help, [Sample(name=name, value=value)])


def base_url(listening: socket.socket) -> str:
    host, port = listening.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


async def _stop_on_signal(stop: trio.Event, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        task_status.started()
        async for signum in signals:
            if stop.is_set():
                raise KeyboardInterrupt  # a second signal: stop now, without waiting for streams
            log.info("received %s; shutting down gracefully", signal.Signals(signum).name)
            stop.set()
