"""The command line: ``serve`` (the default), ``replay``, ``log`` (and ``log compact``), ``sessions``, ``config``,
``mcp``, ``index`` and ``skills``.

Every failure a user can cause prints one line naming the problem and the fix, and exits non-zero; no
tracebacks.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import trio

from lynkr import __version__, heap
from lynkr.actors.runtime import ActorEscalation
from lynkr.config import Config, ConfigError, load_config, nothing_configured_hint
from lynkr.datadir import DAEMON_STREAM, StartupError, events_dir, open_log_readonly, open_store
from lynkr.events.records import EventFromTheFuture, Recorded
from lynkr.index.cli import add_commands as add_index_commands
from lynkr.inspect import render_event_line, replay_sessions
from lynkr.progress import ProgressBar
from lynkr.reflect.cli import add_commands as add_skills_commands
from lynkr.sessions.cli import add_commands as add_session_commands

if TYPE_CHECKING:
    from lynkr.daemon import Running
    from lynkr.events.store import EventStore

EXIT_USAGE = 2
EXIT_FAILURE = 1
EXIT_INTERRUPTED = 130


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    command: Callable[[argparse.Namespace], int] = args.command
    try:
        return command(args)
    except ConfigError as error:
        return _fail(f"configuration error: {error}", EXIT_USAGE)
    except (StartupError, EventFromTheFuture) as error:
        return _fail(str(error), EXIT_FAILURE)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # `lynkr log | head`: the reader went away, which is not an error.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def _fail(message: str, code: int) -> int:
    print(f"lynkr: {message}", file=sys.stderr)
    return code


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lynkr",
        description="A local Anthropic Messages API daemon: run Claude Code against other LLM back ends.",
    )
    parser.add_argument("--version", action="version", version=f"lynkr {__version__}")
    config_help = "TOML configuration file (default: lynkr.toml in the workspace)"
    parser.add_argument("--config", type=Path, metavar="PATH", help=config_help)
    # Accepted after the command too (`lynkr log --config x.toml`); there it must not reset the global one.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", type=Path, metavar="PATH", default=argparse.SUPPRESS, help=config_help)
    parser.set_defaults(command=_serve)
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    serve = commands.add_parser("serve", parents=[common], help="run the daemon in the foreground (the default)",
                                description="Run the daemon in the foreground until SIGINT or SIGTERM.")
    serve.set_defaults(command=_serve)

    replay = commands.add_parser(
        "replay",
        parents=[common],
        help="rebuild state from the log and show a session turn by turn",
        description="Fold the whole event log into session state, as start-up would, then list the sessions "
        "or show one session's transcript turn by turn.",
    )
    replay.add_argument("session", nargs="?", help="session id (or a unique prefix); omit to list sessions")
    replay.add_argument("--rebuild", action="store_true",
                        help="rebuild all derived state from the whole log, ignoring snapshots, and write fresh "
                        "snapshots; reports counts and time")
    replay.add_argument("--check", action="store_true",
                        help="convert the session's recorded upstream answers with this lynkr's code and report "
                        "every difference from what the client received; exits 1 on any difference")
    replay.add_argument("--json", action="store_true", help="print the transcript (or the check) as JSON")
    replay.add_argument("--full", action="store_true", help="show whole messages instead of summaries")
    replay.set_defaults(command=_replay)

    log = commands.add_parser("log", parents=[common], help="list and tail events",
                              description="Print events from the log, oldest first; filter and follow them.")
    log.add_argument("--type", dest="types", action="append", metavar="TYPE",
                     help="only this event type (repeatable; a trailing * matches a prefix, e.g. 'upstream.*')")
    log.add_argument("--session", help="only events of this session (stream) id")
    log.add_argument("--since", type=int, default=1, metavar="SEQ", help="start at this sequence number")
    log.add_argument("--last", type=int, metavar="N", help="only the last N matching events")
    log.add_argument("--follow", "-f", action="store_true", help="keep printing new events as they are appended")
    log.add_argument("--json", action="store_true", help="print events as JSON lines")
    log.set_defaults(command=_log)

    config = commands.add_parser("config", parents=[common], help="print the effective configuration, secrets masked",
                                 description="Print the effective configuration (defaults < lynkr.toml < .env < "
                                 "environment) with every secret masked.")
    config.add_argument("--json", action="store_true", help="print as JSON")
    config.add_argument("--sources", action="store_true",
                        help="show where each value came from: default, lynkr.toml, .env or the environment")
    config.add_argument("--table", action="store_true",
                        help="print every setting as a Markdown table (variable, default, meaning) instead")
    config.set_defaults(command=_config)

    mcp = commands.add_parser("mcp", parents=[common], help="list MCP servers: state, tools, last error",
                              description="List the MCP servers lynkr bridges, as the running daemon sees them "
                              "(or as configured, when no daemon answers): state, tools and the last error of each.")
    mcp.add_argument("--json", action="store_true", help="print as JSON")
    mcp.set_defaults(command=_mcp)

    add_index_commands(commands, common, _load)
    add_skills_commands(commands, common, _load)
    add_session_commands(commands, log, common, _load)
    return parser


def _load(args: argparse.Namespace) -> Config:
    return load_config(environ=os.environ, cwd=Path.cwd(), config_path=args.config)


def _serve(args: argparse.Namespace) -> int:
    from lynkr.daemon import run_daemon  # the server stack loads only for the daemon itself

    # Logging first, so that what loading the configuration warns about (a .env line it skipped) is printed
    # like everything else; the configured level applies once it is known.
    logging.basicConfig(
        level=logging.WARNING, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    config = _load(args)
    logging.getLogger().setLevel(config.log_level.upper())
    # httpx logs every request at INFO: a line per proxied call, and measurable CPU on the hot path.
    for noisy in ("httpx", "httpcore", "hpack"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            running: Running = await nursery.start(
                lambda task_status: run_daemon(config, install_signal_handlers=True, task_status=task_status)
            )
            _banner(config, running, sys.stdout)
            heap.settle()  # start-up's objects are frozen out of later collections (lynkr/heap.py)

    failures: list[str] = []
    interrupted = False
    try:
        trio.run(main)
    except* (ActorEscalation, StartupError) as group:
        failures.extend(str(error) for error in group.exceptions)
    except* KeyboardInterrupt:
        interrupted = True
    if failures:
        return _fail(failures[0], EXIT_FAILURE)
    if interrupted:
        return _fail("stopped at a second signal, without waiting for open requests", EXIT_INTERRUPTED)
    return 0


def _banner(config: Config, running: Running, out: TextIO) -> None:
    key = config.api_key.reveal() if config.api_key is not None else "lynkr"
    if config.model_provider is None:
        provider = f"none configured: {nothing_configured_hint()}"
    else:
        chosen = config.providers[config.model_provider]
        provider = f"{chosen.name} ({chosen.kind}) at {chosen.endpoint}"
    print(f"lynkr {__version__} listening on {running.base_url}", file=out)
    print(f"  workspace  {config.workspace_root}", file=out)
    print(f"  data       {config.data_dir}", file=out)
    print(f"  provider   {provider}", file=out)
    print("Point Claude Code at it:", file=out)
    print(f"  export ANTHROPIC_BASE_URL={running.base_url}", file=out)
    print(f"  export ANTHROPIC_API_KEY={key}", file=out)
    out.flush()


def _replay(args: argparse.Namespace) -> int:
    config = _load(args)
    if args.rebuild:
        if args.session is not None:
            return _fail("--rebuild rebuilds every session; leave out the session id", EXIT_USAGE)
        return _rebuild(config)
    if args.check and args.session is None:
        return _fail("--check checks one session; name it (run `lynkr replay` to list them)", EXIT_USAGE)
    with open_log_readonly(config.data_dir) as store:
        if args.session is not None:
            # One session replays through the by-stream index, without reading anyone else's events.
            names = [s.stream for s in store.iter_streams() if s.stream != DAEMON_STREAM]
            matches = [args.session] if args.session in names else [n for n in names if n.startswith(args.session)]
            if len(matches) != 1:
                found = "no session" if not matches else f"{len(matches)} sessions"
                return _fail(f"{found} match {args.session!r}; run `lynkr replay` to list them", EXIT_FAILURE)
            return _show_session(store, matches[0], args)
        progress = ProgressBar("replaying", sys.stderr) if sys.stderr.isatty() else None
        started = time.perf_counter()
        sessions, report = replay_sessions(store, progress=progress)
        if progress is not None:
            progress.close()
        seconds = time.perf_counter() - started
        print(
            f"replayed {report.events} events in {seconds:.2f} s "
            f"({report.skipped} skipped as corrupt or unknown)",
            file=sys.stderr,
        )
        if not sessions:
            print("no sessions recorded yet")
        for session_id, session in sorted(sessions.items(), key=lambda item: item[1].first_seq):
            models = [turn.request.model for turn in session.turns if turn.request is not None]
            print(f"{session_id}  {len(session.turns)} turns  last model {models[-1] if models else '-'}")
    return 0


def _show_session(store: EventStore, stream: str, args: argparse.Namespace) -> int:
    """One session turn by turn (``--json``: the same facts as JSON), or ``--check``ed against today's converters."""
    from lynkr.replay import check, gather, layout

    started = time.perf_counter()
    session = gather.gather(store, stream)
    stats = store.stats()
    print(
        f"replayed {session.events} events in {time.perf_counter() - started:.2f} s "
        f"({stats.skipped_corrupt + stats.skipped_unknown} skipped as corrupt or unknown)",
        file=sys.stderr,
    )
    if not session.turns:
        return _fail(f"session {stream!r} has no requests or answers in the log", EXIT_FAILURE)
    if not args.check:
        facts = layout.session_facts(session)
        print(json.dumps(facts, indent=2, ensure_ascii=False) if args.json else layout.render(facts, full=args.full))
        return 0
    report = check.check_session(session)
    if args.json:
        print(json.dumps({
            "session_id": stream,
            "checked": report.checked,
            "notes": report.notes,
            "differences": [
                {"turn": d.turn, "request_id": d.request_id, "provider": d.provider, "attempt": d.attempt,
                 "path": d.path, "client_got": d.recorded, "now": d.now}
                for d in report.differences
            ],
        }, indent=2, ensure_ascii=False, default=repr))
    else:
        for note in report.notes:
            print(note)
        for difference in report.differences:
            print(difference.line())
        verdict = "no differences" if not report.differences else f"{len(report.differences)} differences"
        print(f"checked {report.checked} recorded upstream answers of {len(session.turns)} turns: {verdict}")
    if report.checked == 0:
        print("lynkr: nothing in this session could be checked: no upstream answer is recorded for it",
              file=sys.stderr)
    return EXIT_FAILURE if report.differences else 0


def _rebuild(config: Config) -> int:
    from lynkr.events.snapshots import DERIVED_STATE, rebuild, save_snapshots

    if not events_dir(config.data_dir).exists():
        return _fail(f"no event log in {config.data_dir}; start the daemon first, or set LYNKR_DATA_DIR", EXIT_FAILURE)
    with open_store(config.data_dir, map_size=config.log_map_size_bytes) as store:
        progress = ProgressBar("rebuilding", sys.stderr) if sys.stderr.isatty() else None
        rebuilt = rebuild(store, DERIVED_STATE, use_snapshots=False, progress=progress)
        if progress is not None:
            progress.close()
        save_snapshots(store, DERIVED_STATE, rebuilt.states, rebuilt.last_seq)
        stats = store.stats()
    rate = rebuilt.events_folded / rebuilt.seconds if rebuilt.seconds > 0 else 0.0
    print(
        f"rebuilt from {rebuilt.events_folded:,} events in {rebuilt.seconds:.2f} s ({rate:,.0f} events/s, "
        f"{stats.skipped_corrupt + stats.skipped_unknown} skipped as corrupt or unknown); snapshots written at "
        f"seq {rebuilt.last_seq:,}"
    )
    for derived in DERIVED_STATE:
        print(f"  {derived.name}: {derived.describe(rebuilt.states[derived.name])}")
    return 0


def _log(args: argparse.Namespace) -> int:
    config = _load(args)
    matches = _type_filter(args.types)
    with open_log_readonly(config.data_dir) as store:
        start = args.since
        if args.last is not None:
            tail = [r for r in store.read(start, stream=args.session) if matches(r)][-args.last :]
            for recorded in tail:
                _print_event(recorded, args.json)
            start = (tail[-1].seq + 1) if tail else store.last_seq() + 1
        else:
            for recorded in store.read(start, stream=args.session):
                if matches(recorded):
                    _print_event(recorded, args.json)
                start = recorded.seq + 1
        if not args.follow:
            return 0
        start = max(start, 1)
        sys.stdout.flush()
        while True:
            time.sleep(0.2)
            for recorded in store.read(start, stream=args.session):
                if matches(recorded):
                    _print_event(recorded, args.json)
                start = recorded.seq + 1
            sys.stdout.flush()


def _type_filter(types: list[str] | None) -> Callable[[Recorded], bool]:
    if not types:
        return lambda recorded: True
    exact = {t for t in types if not t.endswith("*")}
    prefixes = tuple(t[:-1] for t in types if t.endswith("*"))
    return lambda recorded: recorded.event.TYPE in exact or recorded.event.TYPE.startswith(prefixes)


def _print_event(recorded: Recorded, as_json: bool) -> None:
    print(render_event_line(recorded, as_json=as_json))


def _mcp(args: argparse.Namespace) -> int:
    from lynkr.mcp import report

    servers, note = report.fetch(_load(args))
    if args.json:
        print(json.dumps({"servers": servers, "note": note}, indent=2))
    else:
        print(report.render(servers, note))
    return 0


def _config(args: argparse.Namespace) -> int:
    if args.table:
        print(settings_table())
        return 0
    config = _load(args)
    if args.sources:
        rows = config.explained()
        if args.json:
            print(json.dumps([{"setting": name, "value": value, "source": source} for name, value, source in rows],
                             indent=2, default=str))
        else:
            for name, value, source in rows:
                print(f"{name} = {json.dumps(value, default=str)}  # {source}")
        return 0
    masked: dict[str, Any] = config.masked()
    if args.json:
        print(json.dumps(masked, indent=2, default=str))
    else:
        for key, value in masked.items():
            print(f"{key} = {json.dumps(value, default=str)}")
    return 0


def settings_table() -> str:
    """The README's configuration table, generated so that it cannot drift from the code."""
    lines = ["| variable | default | meaning |", "| --- | --- | --- |"]
    for _name, variable, default, description in Config.describe():
        if variable is not None:
            lines.append(f"| `{variable}` | {default} | {description} |")
    return "\n".join(lines)
