"""The index tools: symbol search, go to definition, references, rebuild, project summary and the repo map.

They read the workspace index the daemon keeps (``ToolContext.index``).  Queries run in a worker thread:
the first query after a big change loads that change from LMDB, and the trio loop must not wait for it.
"""

from __future__ import annotations

from typing import Any

import trio

from lynkr.config import Config
from lynkr.index.handle import IndexHandle
from lynkr.index.repomap import repo_map
from lynkr.index.summary import project_summary_text
from lynkr.tools.base import Action, Tool, ToolContext, ToolInputError, ToolResult, ToolSpec
from lynkr.tools.declared import (
    Arguments,
    DeclaredTool,
    count_argument,
    error,
    flag_argument,
    required_text,
    schema,
    text_argument,
    texts_argument,
)

KINDS = ("class", "function", "method", "interface", "struct", "enum", "trait", "type", "module", "namespace",
         "constant", "macro", "property")
NO_INDEX = (
    "The workspace index is not available: the daemon runs without it (LYNKR_INDEX=false) or it has not "
    "started.  Use Grep/Glob to search the code instead."
)


def _reader_actions(arguments: Arguments) -> list[Action]:
    return [Action(kind="index.read")]


def _handle(context: ToolContext) -> IndexHandle:
    if not isinstance(context.index, IndexHandle):
        raise ToolInputError(NO_INDEX)
    return context.index


def _location(definition: Any) -> str:
    return f"{definition.path}:{definition.line}:{definition.column + 1}"


async def symbol_search(arguments: Arguments, context: ToolContext) -> ToolResult:
    query = required_text(arguments, "query")
    kinds = texts_argument(arguments, "kind")
    languages = texts_argument(arguments, "language")
    exact = flag_argument(arguments, "exact")
    limit = count_argument(arguments, "limit", 20, low=1, high=200)
    reader = _handle(context).reader
    matches = await trio.to_thread.run_sync(
        lambda: reader.search(query, kinds=kinds, languages=languages, exact=exact, limit=limit)
    )
    if not matches:
        return ToolResult(content=f"No definitions match {query!r}.")
    lines = [f"{len(matches)} definition(s) matching {query!r}, best first:"]
    for match in matches:
        d = match.definition
        lines.append(f"{_location(d)}  {d.kind} {d.qualified}  [{match.language}]  {d.signature}")
    return ToolResult(content="\n".join(lines))


async def goto_definition(arguments: Arguments, context: ToolContext) -> ToolResult:
    symbol = required_text(arguments, "symbol")
    near = text_argument(arguments, "path")
    reader = _handle(context).reader
    found = await trio.to_thread.run_sync(lambda: reader.definitions_of(symbol, path=near))
    if not found:
        return error(f"No definition of {symbol!r} in the index; try workspace_symbol_search for close names.")
    lines = [f"{len(found)} definition(s) of {symbol!r}:"]
    for d in found:
        lines.append(f"{_location(d)}-{d.end_line}  {d.kind} {d.qualified}  {d.signature}")
    return ToolResult(content="\n".join(lines))


async def symbol_references(arguments: Arguments, context: ToolContext) -> ToolResult:
    symbol = required_text(arguments, "symbol")
    limit = count_argument(arguments, "limit", 100, low=1, high=1000)
    reader = _handle(context).reader
    found, total = await trio.to_thread.run_sync(lambda: reader.references_to(symbol, limit=limit))
    if not found:
        return ToolResult(content=f"No references to {symbol!r} in the index.")
    lines = [f"{total} reference(s) to {symbol!r}" + (f", first {len(found)}:" if total > len(found) else ":")]
    for r in found:
        where = f" in {r.scope}" if r.scope else ""
        lines.append(f"{r.path}:{r.line}:{r.column + 1}  {r.kind}{where}")
    return ToolResult(content="\n".join(lines))


async def index_rebuild(arguments: Arguments, context: ToolContext) -> ToolResult:
    handle = _handle(context)
    if handle.rebuild is None:
        return error("This index is read-only here; restart the daemon or run `lynkr index rebuild`.")
    counts = await handle.rebuild()
    skipped = ", ".join(f"{reason} {n}" for reason, n in counts.get("skipped", {}).items()) or "none"
    return ToolResult(
        content=(
            f"Index rebuilt: {counts.get('parsed', 0)} file(s) parsed, {counts.get('definitions', 0)} definitions, "
            f"{counts.get('references', 0)} references; skipped: {skipped}."
        )
    )


async def project_summary(arguments: Arguments, context: ToolContext) -> ToolResult:
    reader = _handle(context).reader
    return ToolResult(content=await trio.to_thread.run_sync(project_summary_text, reader))


def repo_map_tool(default_tokens: int) -> Any:
    async def workspace_repo_map(arguments: Arguments, context: ToolContext) -> ToolResult:
        question = text_argument(arguments, "question") or ""
        files = texts_argument(arguments, "files")
        symbols = texts_argument(arguments, "symbols")
        budget = count_argument(arguments, "max_tokens", default_tokens, low=64, high=16384)
        reader = _handle(context).reader
        text = await trio.to_thread.run_sync(
            lambda: repo_map(reader, text=question, files=files, names=symbols, budget_tokens=budget)
        )
        return ToolResult(content=text or "The index holds no definitions yet.")

    return workspace_repo_map


def tools(config: Config) -> list[Tool]:
    if not config.index.enabled:
        return []

    def spec(name: str, description: str, properties: dict[str, Any], required: tuple[str, ...] = ()) -> ToolSpec:
        return ToolSpec(name=name, description=description, input_schema=schema(properties, required),
                        family="index", kinds=("index.read",))

    strings = {"type": "array", "items": {"type": "string"}}
    declared = [
        (spec("workspace_symbol_search",
              "Find definitions (classes, functions, methods, types...) in the workspace by name: exact, "
              "prefix, substring or fuzzy, best first. 'Scope.name' narrows to a class or module.",
              {"query": {"type": "string", "description": "A name, part of one, or Scope.name"},
               "kind": {**strings, "description": f"Only these kinds: {', '.join(KINDS)}"},
               "language": {**strings, "description": "Only these languages (python, typescript, go, ...)"},
               "exact": {"type": "boolean", "description": "Only exact name matches"},
               "limit": {"type": "integer", "minimum": 1, "maximum": 200}},
              ("query",)), symbol_search),
        (spec("workspace_goto_definition", "Where a symbol is defined: file, line span, kind and signature.",
              {"symbol": {"type": "string", "description": "A name or Scope.name"},
               "path": {"type": "string", "description": "The file you are in: its own definitions come first"}},
              ("symbol",)), goto_definition),
        (spec("workspace_symbol_references", "Where a name is referenced or called in the workspace.",
              {"symbol": {"type": "string"}, "limit": {"type": "integer", "minimum": 1, "maximum": 1000}},
              ("symbol",)), symbol_references),
        (spec("workspace_index_rebuild", "Re-index the whole workspace from scratch and report the counts.", {}),
         index_rebuild),
        (spec("project_summary",
              "The workspace at a glance: languages, frameworks, dependencies, tooling, layout, key modules, "
              "most referenced symbols and how to run the tests.", {}), project_summary),
        (spec("workspace_repo_map",
              "The definitions most relevant to a question, ranked over the workspace's reference graph and "
              "fitted to a token budget.",
              {"question": {"type": "string", "description": "What you are working on; names and paths in it seed the ranking"},
               "files": {**strings, "description": "Files in play"},
               "symbols": {**strings, "description": "Names in play"},
               "max_tokens": {"type": "integer", "minimum": 64, "maximum": 16384}}),
         repo_map_tool(config.index.repo_map_tokens)),
    ]
    return [DeclaredTool(spec=s, describe=_reader_actions, implementation=impl) for s, impl in declared]


PROJECTIONS = ()
