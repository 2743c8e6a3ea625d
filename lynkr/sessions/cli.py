"""``lynkr sessions`` and ``lynkr log compact``.

``sessions`` reads the log read-only (also while the daemon runs); ``log compact`` rewrites it, so it takes the
daemon lock and refuses while a daemon runs.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from lynkr.config import Config
from lynkr.progress import ProgressBar
from lynkr.sessions.compaction import compact
from lynkr.sessions.listing import load_sessions, newest_first, render

Loader = Callable[[argparse.Namespace], Config]

EXIT_USAGE = 2


def add_commands(commands: Any, log: argparse.ArgumentParser, common: argparse.ArgumentParser, load: Loader) -> None:
    sessions = commands.add_parser(
        "sessions", parents=[common], help="list sessions: turns, tokens, estimated cost, models, last activity",
        description="List the recorded sessions, newest first, with their turns, tokens, estimated cost (at list "
        "prices; 'unknown' when a model has none), models and last activity.  Works while the daemon runs.",
    )
    sessions.add_argument("--json", action="store_true", help="print as JSON")
    sessions.add_argument("--limit", type=int, metavar="N", help="only the N most recently active sessions")
    sessions.set_defaults(command=lambda args: _sessions(args, load(args)))

    actions = log.add_subparsers(title="actions", metavar="ACTION")
    compaction = actions.add_parser(
        "compact", parents=[common], help="drop the bulk of sessions idle beyond LYNKR_RETAIN_DAYS, keep summaries",
        description="Write a new event log without the requests, responses and other records of sessions idle "
        "for longer than the retention, keeping one summary per session, and swap it in; the old log is kept "
        "aside.  Refuses while the daemon runs.",
    )
    compaction.add_argument("--retain-days", type=int, metavar="DAYS",
                            help="keep sessions active in the last DAYS days whole (default: LYNKR_RETAIN_DAYS)")
    compaction.add_argument("--dry-run", action="store_true", help="only say what would be dropped")
    compaction.set_defaults(command=lambda args: _compact(args, load(args)))


def _sessions(args: argparse.Namespace, config: Config) -> int:
    if args.limit is not None and args.limit < 1:
        print("lynkr: --limit must be at least 1", file=sys.stderr)
        return EXIT_USAGE
    kinds = {name: provider.kind for name, provider in config.providers.items()}
    summaries = newest_first(load_sessions(config.data_dir), kinds, limit=args.limit)
    if args.json:
        print(json.dumps([summary.as_json() for summary in summaries], indent=2))
    else:
        print(render(summaries))
    return 0


def _compact(args: argparse.Namespace, config: Config) -> int:
    days = config.sessions.retain_days if args.retain_days is None else args.retain_days
    if days < 1:
        print("lynkr: nothing to compact: the retention keeps everything; set LYNKR_RETAIN_DAYS (or pass "
              "--retain-days) to a number of days", file=sys.stderr)
        return EXIT_USAGE
    progress = ProgressBar("planning", sys.stderr) if sys.stderr.isatty() else None
    result = compact(config.data_dir, retain_days=days, progress=progress.stage if progress else None,
                     dry_run=args.dry_run)
    if progress is not None:
        progress.close()
    dropped = result.events_before - result.events_after
    if args.dry_run:
        print(f"would compact {result.sessions_compacted} sessions idle for more than {days} days: "
              f"{result.events_before:,} events would become {result.events_after:,} ({dropped:,} fewer)")
        return 0
    if result.old_log is None:
        print(f"nothing to compact: no session has been idle for more than {days} days")
        return 0
    print(f"compacted {result.sessions_compacted} sessions idle for more than {days} days: "
          f"{result.events_before:,} events -> {result.events_after:,}, "
          f"{_bytes_change(result.bytes_before, result.bytes_after or 0)}")
    print(f"the log before compaction is kept in {result.old_log}; delete that folder once you no longer need it")
    return 0


def _bytes_change(before: int, after: int) -> str:
    saved = f" ({1 - after / before:.0%} smaller)" if before > 0 and after < before else ""
    return f"{before:,} B -> {after:,} B on disk{saved}"
