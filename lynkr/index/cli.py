"""``lynkr index status|search|refs|map|rebuild``: the index tools' answers on the command line.

Queries open the index read-only, so they work while the daemon runs (LMDB readers never wait for its
writer).  ``rebuild`` writes, so it runs only while no daemon holds the data folder; a running daemon
rebuilds through its ``workspace_index_rebuild`` tool and otherwise keeps the index current by itself.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from typing import Any

from lynkr.config import Config
from lynkr.datadir import daemon_lock
from lynkr.index.progress import progress_bar
from lynkr.index.repomap import repo_map
from lynkr.index.store import IndexStore
from lynkr.index.summary import summary_data
from lynkr.index.symbols import IndexReader
from lynkr.index.writer import IndexWriter, RunCounts

Loader = Callable[[argparse.Namespace], Config]


def add_commands(commands: Any, common: argparse.ArgumentParser, load: Loader) -> None:
    index = commands.add_parser("index", parents=[common], help="query or rebuild the workspace index",
                                description="Query the workspace index (also while the daemon runs), or rebuild it.")
    actions = index.add_subparsers(title="actions", metavar="ACTION", required=True)

    def action(name: str, help_text: str, run: Callable[[argparse.Namespace, Config], int]) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = actions.add_parser(name, parents=[common], help=help_text, description=help_text)
        parser.add_argument("--json", action="store_true", help="print JSON")
        parser.set_defaults(command=lambda args: run(args, load(args)))
        return parser

    action("status", "what the index holds: files, languages, frameworks, tests, skipped files", _status)
    search = action("search", "find definitions by name (exact, prefix, substring, fuzzy)", _search)
    search.add_argument("query")
    search.add_argument("--kind", action="append", default=[], help="only this kind (repeatable)")
    search.add_argument("--language", action="append", default=[], help="only this language (repeatable)")
    search.add_argument("--exact", action="store_true", help="exact names only")
    search.add_argument("--limit", type=int, default=20)
    refs = action("refs", "where a name is referenced", _refs)
    refs.add_argument("symbol")
    refs.add_argument("--limit", type=int, default=100)
    repomap = action("map", "the definitions most relevant to a question, within a token budget", _map)
    repomap.add_argument("question", nargs="?", default="")
    repomap.add_argument("--file", dest="files", action="append", default=[], help="a file in play (repeatable)")
    repomap.add_argument("--tokens", type=int, default=None, help="token budget (default: LYNKR_REPO_MAP_TOKENS)")
    action("rebuild", "re-index the workspace from scratch (only while no daemon runs)", _rebuild)


def _reader(config: Config) -> IndexReader:
    return IndexReader.open(config.data_dir)


def _emit(args: argparse.Namespace, data: Any, text: str) -> int:
    print(json.dumps(data, indent=2, default=str) if args.json else text)
    return 0


def _status(args: argparse.Namespace, config: Config) -> int:
    reader = _reader(config)
    try:
        data = summary_data(reader)
    finally:
        reader.close()
    languages = ", ".join(f"{l['language']} {l['files']}" for l in data["languages"]) or "none"
    last = data["last_run"]
    skipped = {**last.get("skipped", {}), **data["skipped"]}
    text = "\n".join([
        f"index      {config.data_dir / 'index'} (generation {data['generation']})",
        f"workspace  {config.workspace_root}",
        f"files      {data['files']} indexed, {data['definitions']} definitions",
        f"languages  {languages}",
        f"frameworks {', '.join(data['frameworks']) or 'none detected'}",
        (f"tests      {data['tests']['files']} files, {data['tests']['functions']} functions; "
         f"command: {data['tests']['command'] or 'none detected'}"),
        (f"last run   parsed {last.get('parsed', 0)}, unchanged {last.get('unchanged', 0)} in "
         f"{last.get('duration_s', 0)} s"),
        "skipped    " + (", ".join(f"{k} {v}" for k, v in sorted(skipped.items())) or "none"),
    ])
    return _emit(args, data, text)


def _search(args: argparse.Namespace, config: Config) -> int:
    reader = _reader(config)
    try:
        matches = reader.search(args.query, kinds=args.kind, languages=args.language, exact=args.exact,
                                limit=args.limit)
    finally:
        reader.close()
    rows = [{"name": m.definition.qualified, "kind": m.definition.kind, "path": m.definition.path,
             "line": m.definition.line, "column": m.definition.column + 1, "end_line": m.definition.end_line,
             "language": m.language, "signature": m.definition.signature} for m in matches]
    text = "\n".join(f"{r['path']}:{r['line']}:{r['column']}  {r['kind']} {r['name']}  {r['signature']}"
                     for r in rows) or f"no definitions match {args.query!r}"
    return _emit(args, rows, text)


def _refs(args: argparse.Namespace, config: Config) -> int:
    reader = _reader(config)
    try:
        found, total = reader.references_to(args.symbol, limit=args.limit)
    finally:
        reader.close()
    rows = [{"path": r.path, "line": r.line, "column": r.column + 1, "kind": r.kind, "scope": r.scope}
            for r in found]
    text = "\n".join(f"{r['path']}:{r['line']}:{r['column']}  {r['kind']}" + (f" in {r['scope']}" if r["scope"] else "")
                     for r in rows) or f"no references to {args.symbol!r}"
    return _emit(args, {"total": total, "references": rows}, text)


def _map(args: argparse.Namespace, config: Config) -> int:
    reader = _reader(config)
    try:
        budget = args.tokens or config.index.repo_map_tokens
        text = repo_map(reader, text=args.question, files=args.files, budget_tokens=budget)
    finally:
        reader.close()
    return _emit(args, {"map": text}, text.rstrip("\n"))


def _rebuild(args: argparse.Namespace, config: Config) -> int:
    with daemon_lock(config.data_dir):
        store = IndexStore.open(config.data_dir)
        try:
            writer = IndexWriter(store, config.workspace_root.resolve(), max_file_bytes=config.index.max_file_bytes)
            writer.forget()
            started = time.perf_counter()
            plan = writer.plan()
            counts = RunCounts(seen=plan.seen, unchanged=plan.unchanged, skipped=plan.skipped.copy())
            with progress_bar(len(plan.to_parse), enabled=sys.stderr.isatty()) as advance:
                for batch in writer.batches(plan):
                    writer.apply(writer.parse(batch), (), counts)
                    advance(len(batch))
            writer.apply([], plan.removed, counts, refresh_project=True)
            duration = time.perf_counter() - started
            writer.finish(counts, duration)
        finally:
            store.close()
    data = {**counts.as_dict(), "duration_s": round(duration, 3)}
    skipped = ", ".join(f"{k} {v}" for k, v in sorted(counts.skipped.items())) or "none"
    text = (f"rebuilt: {counts.parsed} files parsed in {duration:.2f} s ({counts.definitions} definitions, "
            f"{counts.references} references); skipped: {skipped}")
    return _emit(args, data, text)
