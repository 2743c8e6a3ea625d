"""lynkr's own file tools: read, write, patch, list, search, and the history of every write with its revert.

Every write, by these tools or the CLI's built-ins, is a ``tool.file_written`` event holding the bytes the file
had before (:mod:`lynkr.tools.edits`); ``workspace_edit_history`` lists them from the folded ``edits`` state and
``workspace_edit_revert`` puts a file back, itself recorded as a write that can be reverted in turn.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import trio

from lynkr.tools import edits
from lynkr.tools.base import Action, Tool, ToolContext, ToolInputError, ToolResult, ToolSpec
from lynkr.tools.edits import EDITS, EditHistory, read_before, record_write, sha256, write_file
from lynkr.tools.events import FileWritten
from lynkr.tools.patch import PatchError, apply, parse
from lynkr.tools.policy import FilePolicy, file_policy
from lynkr.tools.text import BINARY_SNIFF_BYTES, MAX_EDIT_BYTES, check_file, decode, lines_of, looks_binary, numbered
from lynkr.tools.walk import Ignorer, glob_regex, walk_files
from lynkr.tools.workspace import folder, relative, target

if TYPE_CHECKING:
    from lynkr.config import Config

LIST_LIMIT = 1000
SEARCH_LIMIT = 200
SEARCH_FILE_MAX_BYTES = 2 * 1024 * 1024  # larger files are skipped by search, and said to be
READ_LINES_LIMIT = 2000


def _object(properties: Mapping[str, Any], required: Sequence[str] = ()) -> dict[str, Any]:
    return {"type": "object", "properties": dict(properties), "required": list(required), "additionalProperties": False}


@attrs.frozen
class FsRead:
    spec: ToolSpec = ToolSpec(
        name="fs_read",
        kinds=("fs.read",),
        description="Read a text file of the workspace, whole or a range of lines; lines come back numbered.",
        input_schema=_object(
            {
                "path": {"type": "string", "description": "File path, relative to the workspace root."},
                "start_line": {"type": "integer", "minimum": 1, "description": "First line to read (1-based)."},
                "end_line": {"type": "integer", "minimum": 1, "description": "Last line to read (inclusive)."},
            },
            ["path"],
        ),
    )

    def actions(self, arguments: Mapping[str, Any]) -> Sequence[Action]:
        return [Action(kind="fs.read", paths=(str(arguments["path"]),))]

    async def run(self, arguments: Mapping[str, Any], context: ToolContext) -> ToolResult:
        shown = str(arguments["path"])
        path = target(context, shown)
        first = int(arguments.get("start_line") or 1)
        last = int(arguments.get("end_line") or first + READ_LINES_LIMIT - 1)
        if last < first:
            raise ToolInputError(f"end_line {last} is before start_line {first}; give a range like 1 to 50")

        def read() -> ToolResult:
            check_file(path, shown)
            lines, total = lines_of(path, shown, first, min(last - first + 1, READ_LINES_LIMIT))
            if total == 0:
                return ToolResult(content=f"{shown} is empty")
            if not lines:
                return ToolResult(content=f"{shown} has {total} lines; start_line {first} is past its end", is_error=True)
            shown_last = first + len(lines) - 1
            more = f" (of {total}; read on with start_line={shown_last + 1})" if shown_last < total else f" (of {total})"
            return ToolResult(content=f"{shown}: lines {first}-{shown_last}{more}\n{numbered(lines, first)}")

        return await trio.to_thread.run_sync(read)


@attrs.frozen
class FsWrite:
    spec: ToolSpec = ToolSpec(
        name="fs_write",
        kinds=("fs.write",),
        description="Create or replace a text file in the workspace (parent folders are created). Revertible.",
        input_schema=_object(
            {
                "path": {"type": "string", "description": "File path, relative to the workspace root."},
                "content": {"type": "string", "description": "The file's whole new content."},
            },
            ["path", "content"],
        ),
    )

    def actions(self, arguments: Mapping[str, Any]) -> Sequence[Action]:
        return [Action(kind="fs.write", paths=(str(arguments["path"]),))]

    async def run(self, arguments: Mapping[str, Any], context: ToolContext) -> ToolResult:
        shown = str(arguments["path"])
        path = target(context, shown)
        if path.is_dir():
            raise ToolInputError(f"{shown} is a folder; give the path of a file")
        before = await trio.to_thread.run_sync(read_before, path)
        data = str(arguments["content"]).encode()
        written = await record_write(context, path, data, tool="fs_write", before=before)
        event = written.events[0]
        assert isinstance(event, FileWritten)
        verb = "created" if before is None else "replaced"
        return attrs.evolve(
            written, content=f"{verb} {shown} ({len(data)} bytes); undo with workspace_edit_revert edit_id={event.edit_id}"
        )


@attrs.frozen
class EditPatch:
    spec: ToolSpec = ToolSpec(
        name="edit_patch",
        kinds=("fs.write",),
        description=(
            "Apply a unified diff (git diff / diff -u format, one or more files) to the workspace. Either every "
            "hunk applies or nothing is written; a failure names the hunk and the line that differs."
        ),
        input_schema=_object({"patch": {"type": "string", "description": "The unified diff."}}, ["patch"]),
    )

    def actions(self, arguments: Mapping[str, Any]) -> Sequence[Action]:
        try:
            patches = parse(str(arguments["patch"]))
        except PatchError as exc:
            raise ToolInputError(f"the patch cannot be read: {exc}") from None
        paths = {path for patch in patches for path in (patch.old_path, patch.new_path) if path is not None}
        return [Action(kind="fs.write", paths=tuple(sorted(paths)))]

    async def run(self, arguments: Mapping[str, Any], context: ToolContext) -> ToolResult:
        patches = parse(str(arguments["patch"]))

        def compute() -> list[tuple[Path, bytes | None, bytes | None]]:
            planned: list[tuple[Path, bytes | None, bytes | None]] = []
            for patch in patches:
                path = target(context, patch.old_path or patch.path)
                before = read_before(path)
                if before is not None and len(before) > MAX_EDIT_BYTES:
                    raise ToolInputError(f"{patch.path} is too large to patch in memory; edit it with a shell command")
                text = None if before is None else decode(before, patch.path)
                try:
                    after = apply(text, patch)
                except PatchError as exc:
                    raise ToolInputError(str(exc)) from None
                if patch.new_path is not None and patch.old_path is not None and patch.new_path != patch.old_path:
                    # A rename: the old file goes, the new one comes.
                    planned.append((path, before, None))
                    new_path = target(context, patch.new_path)
                    planned.append((new_path, read_before(new_path), None if after is None else after.encode()))
                else:
                    planned.append((path, before, None if after is None else after.encode()))
            return planned

        planned = await trio.to_thread.run_sync(compute)

        def write_all() -> list[FileWritten]:
            return [
                write_file(
                    context.workspace, path, data, tool="edit_patch", session_id=context.session_id,
                    before=before, known_before=True,
                )
                for path, before, data in planned
            ]

        written = await trio.to_thread.run_sync(write_all)
        summary = "\n".join(
            f"{'deleted' if data is None else 'created' if before is None else 'patched'} {event.path} "
            f"(edit_id {event.edit_id})"
            for (path, before, data), event in zip(planned, written, strict=True)
        )
        return ToolResult(content=f"applied the patch:\n{summary}", events=tuple(written))


@attrs.frozen
class WorkspaceList:
    policy: FilePolicy
    spec: ToolSpec = ToolSpec(
        name="workspace_list",
        kinds=("fs.read",),
        description="List files of the workspace matching a glob (.gitignore honoured), sorted by path.",
        input_schema=_object(
            {
                "pattern": {"type": "string", "description": "Glob such as '**/*.py' or 'src/*' (default: every file)."},
                "path": {"type": "string", "description": "Folder to list under (default: the workspace root)."},
                "limit": {"type": "integer", "minimum": 1, "maximum": 10000, "description": f"Most paths (default {LIST_LIMIT})."},
            },
        ),
    )

    def actions(self, arguments: Mapping[str, Any]) -> Sequence[Action]:
        return [Action(kind="fs.read", paths=(str(arguments.get("path") or "."),))]

    async def run(self, arguments: Mapping[str, Any], context: ToolContext) -> ToolResult:
        start = folder(context, arguments.get("path"))
        pattern = str(arguments.get("pattern") or "**")
        limit = int(arguments.get("limit") or LIST_LIMIT)
        matcher = glob_matcher(pattern)

        def listing() -> ToolResult:
            found: list[str] = []
            more = False
            for path in walk_files(context.workspace, start, blocked=self.policy.blocked):
                rel_start = path.relative_to(start).as_posix()
                if matcher(rel_start):
                    if len(found) == limit:
                        more = True
                        break
                    found.append(relative(context.workspace, path))
            if not found:
                return ToolResult(content=f"no files match {pattern}")
            tail = f"\n(first {limit} shown; narrow the pattern for the rest)" if more else ""
            return ToolResult(content="\n".join(found) + tail)

        return await trio.to_thread.run_sync(listing)


def glob_matcher(pattern: str, *, names_anywhere: bool = False) -> Callable[[str], bool]:
    """A predicate over ``/``-separated relative paths for a glob where ``**`` crosses folders and ``*`` does not.

    With ``names_anywhere`` a pattern without a ``/`` matches a file name at any depth (``*.py``), as ripgrep's
    ``--glob`` does; otherwise it is anchored at the folder listed (``*.py`` there, ``**/*.py`` everywhere).
    """
    anchored = not names_anywhere or "/" in pattern or pattern.startswith("**")
    regex = re.compile(("" if anchored else "(?:.*/)?") + glob_regex(pattern.lstrip("/")) + "$")
    return lambda rel: regex.match(rel) is not None


@attrs.frozen
class WorkspaceSearch:
    policy: FilePolicy
    spec: ToolSpec = ToolSpec(
        name="workspace_search",
        kinds=("fs.read",),
        description="Search the workspace's text files for a regular expression (.gitignore honoured).",
        input_schema=_object(
            {
                "pattern": {"type": "string", "description": "Python regular expression."},
                "path": {"type": "string", "description": "Folder or file to search (default: the workspace root)."},
                "glob": {"type": "string", "description": "Only files whose path matches this glob, e.g. '*.py'."},
                "case_insensitive": {"type": "boolean"},
                "max_results": {"type": "integer", "minimum": 1, "maximum": 5000, "description": f"Default {SEARCH_LIMIT}."},
            },
            ["pattern"],
        ),
    )

    def actions(self, arguments: Mapping[str, Any]) -> Sequence[Action]:
        return [Action(kind="fs.read", paths=(str(arguments.get("path") or "."),))]

    async def run(self, arguments: Mapping[str, Any], context: ToolContext) -> ToolResult:
        regex = compile_pattern(str(arguments["pattern"]), bool(arguments.get("case_insensitive")))
        root = target(context, arguments.get("path") or ".")
        only = glob_matcher(str(arguments["glob"]), names_anywhere=True) if arguments.get("glob") else None
        limit = int(arguments.get("max_results") or SEARCH_LIMIT)

        def search() -> ToolResult:
            hits: list[str] = []
            skipped: list[str] = []
            for path in searched_files(context.workspace, root, self.policy):
                rel = relative(context.workspace, path)
                if only is not None and not only(rel):
                    continue
                for number, line in matching_lines(path, regex, skipped, rel):
                    hits.append(f"{rel}:{number}: {line[:500]}")
                    if len(hits) >= limit:
                        return ToolResult(content="\n".join(hits) + f"\n(first {limit} matches; narrow the search)")
            note = f"\n(skipped, too large or not text: {', '.join(skipped[:20])})" if skipped else ""
            return ToolResult(content=("\n".join(hits) or f"no matches for {arguments['pattern']}") + note)

        return await trio.to_thread.run_sync(search)


def compile_pattern(pattern: str, ignore_case: bool, *, multiline: bool = False) -> re.Pattern[str]:
    flags = (re.IGNORECASE if ignore_case else 0) | (re.DOTALL | re.MULTILINE if multiline else 0)
    try:
        return re.compile(pattern, flags)
    except re.error as exc:
        raise ToolInputError(f"{pattern!r} is not a valid regular expression ({exc})") from None


def searched_files(workspace: Path, root: Path, policy: FilePolicy) -> list[Path]:
    if root.is_file():
        return [] if policy.blocked.match(workspace, root) else [root]
    if not root.is_dir():
        raise ToolInputError(f"{relative(workspace, root)} does not exist in the workspace")
    return list(walk_files(workspace, root, blocked=policy.blocked, ignorer=Ignorer(workspace)))


def matching_lines(path: Path, regex: re.Pattern[str], skipped: list[str], rel: str) -> list[tuple[int, str]]:
    """(line number, line) of every match in a text file; binary, huge or non-UTF-8 files go to ``skipped``."""
    try:
        if path.stat().st_size > SEARCH_FILE_MAX_BYTES:
            skipped.append(rel)
            return []
        data = path.read_bytes()
    except OSError:
        skipped.append(rel)
        return []
    if looks_binary(data[:BINARY_SNIFF_BYTES]):
        return []
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        skipped.append(rel)
        return []
    return [(number, line) for number, line in enumerate(text.splitlines(), start=1) if regex.search(line)]


@attrs.frozen
class EditHistoryTool:
    spec: ToolSpec = ToolSpec(
        name="workspace_edit_history",
        kinds=("fs.read",),
        description="List recorded writes to workspace files, newest first, with the edit_id to revert each.",
        input_schema=_object(
            {
                "path": {"type": "string", "description": "Only writes to this file."},
                "limit": {"type": "integer", "minimum": 1, "maximum": 1000, "description": "Most entries (default 50)."},
            }
        ),
    )

    def actions(self, arguments: Mapping[str, Any]) -> Sequence[Action]:
        return [Action(kind="fs.read", paths=(str(arguments["path"]),))] if arguments.get("path") else []

    async def run(self, arguments: Mapping[str, Any], context: ToolContext) -> ToolResult:
        history: EditHistory = context.state.part(EDITS)
        wanted = None
        if arguments.get("path"):
            wanted = relative(context.workspace, target(context, arguments["path"]))
        limit = int(arguments.get("limit") or 50)
        rows = []
        for write in reversed(history.writes):
            if wanted is not None and write.path != wanted:
                continue
            change = "created" if write.before is None else "deleted" if write.after_sha256 is None else "changed"
            notes = []
            if write.reverts:
                notes.append(f"reverts {write.reverts}")
            if history.reverted(write.edit_id):
                notes.append("reverted")
            rows.append(f"{write.edit_id}  {write.tool:<12} {change:<8} {write.path}" + (f"  ({', '.join(notes)})" if notes else ""))
            if len(rows) >= limit:
                break
        return ToolResult(content="\n".join(rows) if rows else "no recorded edits")


@attrs.frozen
class EditRevert:
    policy: FilePolicy
    spec: ToolSpec = ToolSpec(
        name="workspace_edit_revert",
        kinds=("fs.write",),
        description=(
            "Put a file back as it was before a recorded edit (see workspace_edit_history). Refuses when the file "
            "changed since that edit, unless force is true."
        ),
        input_schema=_object(
            {
                "edit_id": {"type": "string"},
                "force": {"type": "boolean", "description": "Revert even though the file changed since the edit."},
            },
            ["edit_id"],
        ),
    )

    def actions(self, arguments: Mapping[str, Any]) -> Sequence[Action]:
        # Which file is only known from the edit history; run() judges it against the file policy itself.
        return [Action(kind="fs.write", detail={"edit_id": str(arguments["edit_id"])})]

    async def run(self, arguments: Mapping[str, Any], context: ToolContext) -> ToolResult:
        history: EditHistory = context.state.part(EDITS)
        edit_id = str(arguments["edit_id"])
        write = history.find(edit_id)
        if write is None:
            raise ToolInputError(f"no recorded edit has edit_id {edit_id}; list them with workspace_edit_history")
        problem = self.policy.path_problem(context.workspace, write.path, verb="write")
        if problem is not None:
            return ToolResult(content=f"lynkr's policy refused this revert: {problem}", is_error=True)
        path = target(context, write.path)

        def revert() -> FileWritten:
            current = read_before(path)
            current_sha = None if current is None else sha256(current)
            if current_sha != write.after_sha256 and not arguments.get("force"):
                raise ToolInputError(
                    f"{write.path} changed after edit {edit_id} (by a later edit or outside lynkr); reverting would "
                    "lose that change. Revert the later edits first, or pass force=true"
                )
            return write_file(
                context.workspace, path, write.before, tool="workspace_edit_revert", session_id=context.session_id,
                before=current, known_before=True, reverts=edit_id,
            )

        event = await trio.to_thread.run_sync(revert)
        state = "deleted (it did not exist before)" if write.before is None else "restored"
        return ToolResult(
            content=f"{write.path} {state} as before edit {edit_id}; this revert is edit {event.edit_id}",
            events=(event,),
        )


def tools(config: Config) -> list[Tool]:
    policy = file_policy(config)
    return [
        FsRead(),
        FsWrite(),
        EditPatch(),
        WorkspaceList(policy),
        WorkspaceSearch(policy),
        EditHistoryTool(),
        EditRevert(policy),
    ]


PROJECTIONS = (edits.PROJECTION,)
