"""Claude Code's built-in tools under their own names, for server mode: same inputs, results shaped alike.

When lynkr runs the tools (``TOOL_EXECUTION_MODE=server``) the model still calls ``Bash``, ``Read``,
``Write`` and ``Edit`` as the CLI defined them.  These accept exactly the CLI's input shapes and answer the
way the CLI does: ``Exit code N`` first when a command fails, ``(Bash completed with no output)``, ``cat -n``
numbered lines for ``Read``, ``File created successfully at: ...`` and ``<tool_use_error>...</tool_use_error>``
for input the tool cannot use.  Each turns its input into the same canonical actions as lynkr's own tools
(``Bash`` into ``shell``, ``Read`` into ``fs.read``), so the policy judges them alike.
"""

from __future__ import annotations

import base64
import html as htmllib
import json
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import attrs
import httpx
import trio

from lynkr.tools.base import Action, Tool, ToolContext, ToolInputError, ToolResult, ToolSpec
from lynkr.tools.cmdline import shell_actions
from lynkr.tools import edits
from lynkr.tools.edits import read_before, record_write
from lynkr.tools.shell import MAX_TIMEOUT_MS, format_completed, run_command, timeout_of
from lynkr.tools.files import compile_pattern, glob_matcher, matching_lines, searched_files
from lynkr.tools.policy import FilePolicy, fetch_problem, file_policy
from lynkr.tools.text import IMAGE_TYPES, check_file, decode, describe_size, lines_of, numbered, read_text
from lynkr.tools.walk import walk_files
from lynkr.tools.workspace import relative, target

if TYPE_CHECKING:
    from lynkr.config import Config

FAMILY = "cli"
READ_DEFAULT_LIMIT = 2000
READ_MAX_BYTES = 256 * 1024  # a whole-file Read above this asks for offset/limit, as the CLI does
IMAGE_MAX_BYTES = 5 * 1024 * 1024


def _schema(properties: Mapping[str, Any], required: Sequence[str]) -> dict[str, Any]:
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": dict(properties),
        "required": list(required),
        "additionalProperties": False,
    }


# --- Bash --------------------------------------------------------------------------------------------------------


@attrs.frozen
class Bash:
    spec: ToolSpec = ToolSpec(
        name="Bash",
        family=FAMILY,
        kinds=("shell",),
        description="Executes a given bash command in the workspace and returns its output.",
        input_schema=_schema(
            {
                "command": {"type": "string", "description": "The command to execute"},
                "timeout": {"type": "number", "description": f"Optional timeout in milliseconds (max {MAX_TIMEOUT_MS})"},
                "description": {"type": "string", "description": "What this command does, in active voice."},
                "run_in_background": {"type": "boolean", "description": "Not available when lynkr runs the tools."},
                "dangerouslyDisableSandbox": {"type": "boolean", "description": "Ignored: lynkr's policy applies."},
            },
            ["command"],
        ),
    )

    def actions(self, arguments: Mapping[str, Any]) -> Sequence[Action]:
        if arguments.get("run_in_background"):
            raise ToolInputError(
                "run_in_background is not available when lynkr runs the tools (server mode); "
                "run the command in the foreground with a timeout"
            )
        return shell_actions(str(arguments["command"]))

    async def run(self, arguments: Mapping[str, Any], context: ToolContext) -> ToolResult:
        timeout_s = timeout_of(arguments, "timeout", context.settings.shell_timeout_ms)
        completed = await run_command(
            str(arguments["command"]),
            cwd=context.workspace,
            environ=context.environ,
            timeout_s=timeout_s,
            limit_bytes=context.settings.output_limit_bytes,
        )
        return format_completed(completed, timeout_s=timeout_s)


# --- Read --------------------------------------------------------------------------------------------------------


@attrs.frozen
class Read:
    spec: ToolSpec = ToolSpec(
        name="Read",
        family=FAMILY,
        kinds=("fs.read",),
        description="Reads a file from the workspace; text comes back with line numbers (cat -n), images as images.",
        input_schema=_schema(
            {
                "file_path": {"type": "string", "description": "The path to the file to read"},
                "offset": {"type": "integer", "minimum": 0, "description": "The line number to start reading from"},
                "limit": {"type": "integer", "minimum": 1, "description": "The number of lines to read"},
                "pages": {"type": "string", "description": "Page range for PDF files (not supported by lynkr)"},
                "allow_large": {"type": "boolean", "description": "Read a text file over the usual size limit"},
            },
            ["file_path"],
        ),
    )

    def actions(self, arguments: Mapping[str, Any]) -> Sequence[Action]:
        return [Action(kind="fs.read", paths=(str(arguments["file_path"]),))]

    async def run(self, arguments: Mapping[str, Any], context: ToolContext) -> ToolResult:
        if arguments.get("pages"):
            raise ToolInputError("lynkr cannot read PDF pages; extract the text with a shell command (pdftotext)")
        path = target(context, arguments["file_path"])
        return await trio.to_thread.run_sync(lambda: self._read(path, arguments))

    def _read(self, path: Path, arguments: Mapping[str, Any]) -> ToolResult:
        shown = str(arguments["file_path"])
        size = check_file(path, shown)
        media_type = IMAGE_TYPES.get(path.suffix.lower())
        if media_type is not None:
            if size > IMAGE_MAX_BYTES:
                raise ToolInputError(f"{shown} is {describe_size(size)}, too large an image to read (limit 5 MB)")
            data = base64.b64encode(path.read_bytes()).decode()
            return ToolResult(content=[{"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}])
        ranged = "offset" in arguments or "limit" in arguments
        if size > READ_MAX_BYTES and not ranged and not arguments.get("allow_large"):
            raise ToolInputError(
                f"File content ({describe_size(size)}) exceeds maximum allowed size ({describe_size(READ_MAX_BYTES)}). "
                "Use offset and limit parameters to read specific portions of the file, or search for specific "
                "content instead of reading the whole file."
            )
        if size == 0:
            return ToolResult(content="<system-reminder>Warning: the file exists but the contents are empty.</system-reminder>")
        first = max(int(arguments.get("offset") or 1), 1)
        count = int(arguments.get("limit") or READ_DEFAULT_LIMIT)
        lines, total = lines_of(path, shown, first, count)
        if not lines:
            return ToolResult(
                content=f"<system-reminder>Warning: the file exists but is shorter than the provided offset "
                f"({first}). The file has {total} lines.</system-reminder>"
            )
        return ToolResult(content=numbered(lines, first))


# --- Write -------------------------------------------------------------------------------------------------------


@attrs.frozen
class Write:
    spec: ToolSpec = ToolSpec(
        name="Write",
        family=FAMILY,
        kinds=("fs.write",),
        description="Writes a file in the workspace, creating it or replacing what it held.",
        input_schema=_schema(
            {
                "file_path": {"type": "string", "description": "The path to the file to write"},
                "content": {"type": "string", "description": "The content to write to the file"},
            },
            ["file_path", "content"],
        ),
    )

    def actions(self, arguments: Mapping[str, Any]) -> Sequence[Action]:
        return [Action(kind="fs.write", paths=(str(arguments["file_path"]),))]

    async def run(self, arguments: Mapping[str, Any], context: ToolContext) -> ToolResult:
        shown = str(arguments["file_path"])
        path = target(context, shown)
        if path.is_dir():
            raise ToolInputError(f"{shown} is a folder; give the path of a file to write")
        before = await trio.to_thread.run_sync(read_before, path)
        written = await record_write(context, path, str(arguments["content"]).encode(), tool="Write", before=before)
        message = (
            f"File created successfully at: {shown}"
            if before is None
            else f"The file {shown} has been updated successfully."
        )
        return attrs.evolve(written, content=message)


# --- Edit --------------------------------------------------------------------------------------------------------


@attrs.frozen
class Edit:
    spec: ToolSpec = ToolSpec(
        name="Edit",
        family=FAMILY,
        kinds=("fs.write",),
        description="Replaces exact text in a file of the workspace.",
        input_schema=_schema(
            {
                "file_path": {"type": "string", "description": "The path to the file to modify"},
                "old_string": {"type": "string", "description": "The text to replace"},
                "new_string": {"type": "string", "description": "The text to replace it with"},
                "replace_all": {"type": "boolean", "default": False, "description": "Replace every occurrence"},
            },
            ["file_path", "old_string", "new_string"],
        ),
    )

    def actions(self, arguments: Mapping[str, Any]) -> Sequence[Action]:
        return [Action(kind="fs.write", paths=(str(arguments["file_path"]),))]

    async def run(self, arguments: Mapping[str, Any], context: ToolContext) -> ToolResult:
        shown = str(arguments["file_path"])
        old, new = str(arguments["old_string"]), str(arguments["new_string"])
        if old == new:
            raise ToolInputError("No changes to make: old_string and new_string are exactly the same.")
        path = target(context, shown)
        before = await trio.to_thread.run_sync(read_before, path)
        if before is None:
            if old:
                raise ToolInputError(f"File does not exist: {shown}")
            updated = new
        else:
            text = await trio.to_thread.run_sync(lambda: read_text(path, shown))
            updated = self._replace(text, old, new, bool(arguments.get("replace_all")))
        written = await record_write(context, path, updated.encode(), tool="Edit", before=before)
        return attrs.evolve(written, content=f"The file {shown} has been updated successfully.")

    @staticmethod
    def _replace(text: str, old: str, new: str, replace_all: bool) -> str:
        if not old:
            if text:
                raise ToolInputError("Cannot create new file - file already exists.")
            return new
        found = text.count(old)
        if found == 0:
            raise ToolInputError(f"String to replace not found in file.\nString: {old}")
        if found > 1 and not replace_all:
            raise ToolInputError(
                f"Found {found} matches of the string to replace, but replace_all is false. To replace all "
                "occurrences, set replace_all to true. To replace only one occurrence, please provide more "
                f"context to uniquely identify the instance.\nString: {old}"
            )
        return text.replace(old, new) if replace_all else text.replace(old, new, 1)


# --- Glob and Grep -------------------------------------------------------------------------------------------------

GLOB_LIMIT = 100
GREP_HEAD_LIMIT = 250
# rg --type names the model is likely to use, as file-name globs.
GREP_TYPES: dict[str, tuple[str, ...]] = {
    "py": ("*.py", "*.pyi"), "python": ("*.py", "*.pyi"), "js": ("*.js", "*.mjs", "*.cjs", "*.jsx"),
    "ts": ("*.ts", "*.tsx", "*.mts", "*.cts"), "rust": ("*.rs",), "go": ("*.go",), "java": ("*.java",),
    "c": ("*.c", "*.h"), "cpp": ("*.cpp", "*.cc", "*.cxx", "*.hpp", "*.hh", "*.h"), "rb": ("*.rb",),
    "ruby": ("*.rb",), "md": ("*.md", "*.markdown"), "markdown": ("*.md", "*.markdown"), "json": ("*.json",),
    "yaml": ("*.yaml", "*.yml"), "toml": ("*.toml",), "sh": ("*.sh", "*.bash"), "html": ("*.html", "*.htm"),
    "css": ("*.css", "*.scss"), "kotlin": ("*.kt", "*.kts"), "swift": ("*.swift",), "php": ("*.php",),
}


def _by_mtime(paths: list[Path]) -> list[Path]:
    """Newest first, as the CLI orders its matches; ties (and vanished files) by path."""

    def key(path: Path) -> tuple[float, str]:
        try:
            return (-path.stat().st_mtime, str(path))
        except OSError:
            return (0.0, str(path))

    return sorted(paths, key=key)


@attrs.frozen
class Glob:
    policy: FilePolicy
    spec: ToolSpec = ToolSpec(
        name="Glob",
        family=FAMILY,
        kinds=("fs.read",),
        description="Fast file pattern matching (\"**/*.js\", \"src/**/*.ts\"); returns matching paths, newest first.",
        input_schema=_schema(
            {
                "pattern": {"type": "string", "description": "The glob pattern to match files against"},
                "path": {"type": "string", "description": "The directory to search in (default: the workspace)"},
            },
            ["pattern"],
        ),
    )

    def actions(self, arguments: Mapping[str, Any]) -> Sequence[Action]:
        return [Action(kind="fs.read", paths=(str(arguments.get("path") or "."),))]

    async def run(self, arguments: Mapping[str, Any], context: ToolContext) -> ToolResult:
        raw = arguments.get("path")
        start = context.workspace if raw in (None, "") else target(context, raw)
        if not start.is_dir():
            raise ToolInputError(f"Directory does not exist: {raw}")
        matcher = glob_matcher(str(arguments["pattern"]))

        def find() -> ToolResult:
            found = [
                path
                for path in walk_files(context.workspace, start, blocked=self.policy.blocked)
                if matcher(path.relative_to(start).as_posix())
            ]
            if not found:
                return ToolResult(content="No files found")
            ordered = _by_mtime(found)
            lines = [str(path) for path in ordered[:GLOB_LIMIT]]
            if len(ordered) > GLOB_LIMIT:
                lines.append("(Results are truncated. Consider using a more specific path or pattern.)")
            return ToolResult(content="\n".join(lines))

        return await trio.to_thread.run_sync(find)


@attrs.frozen
class Grep:
    policy: FilePolicy
    spec: ToolSpec = ToolSpec(
        name="Grep",
        family=FAMILY,
        kinds=("fs.read",),
        description="Search file contents with a regular expression, like ripgrep; .gitignore is honoured.",
        input_schema=_schema(
            {
                "pattern": {"type": "string", "description": "The regular expression to search for"},
                "path": {"type": "string", "description": "File or directory to search in"},
                "glob": {"type": "string", "description": "Glob pattern to filter files (e.g. \"*.js\")"},
                "output_mode": {"type": "string", "enum": ["content", "files_with_matches", "count"]},
                "-B": {"type": "number"},
                "-A": {"type": "number"},
                "-C": {"type": "number"},
                "context": {"type": "number"},
                "-n": {"type": "boolean"},
                "-i": {"type": "boolean"},
                "-o": {"type": "boolean"},
                "type": {"type": "string"},
                "head_limit": {"type": "number"},
                "offset": {"type": "number"},
                "multiline": {"type": "boolean"},
            },
            ["pattern"],
        ),
    )

    def actions(self, arguments: Mapping[str, Any]) -> Sequence[Action]:
        return [Action(kind="fs.read", paths=(str(arguments.get("path") or "."),))]

    async def run(self, arguments: Mapping[str, Any], context: ToolContext) -> ToolResult:
        regex = compile_pattern(
            str(arguments["pattern"]), bool(arguments.get("-i")), multiline=bool(arguments.get("multiline"))
        )
        root = target(context, arguments.get("path") or ".")
        filters = [glob_matcher(str(arguments["glob"]), names_anywhere=True)] if arguments.get("glob") else []
        if arguments.get("type"):
            globs = GREP_TYPES.get(str(arguments["type"]), (f"*.{arguments['type']}",))
            type_matchers = [glob_matcher(item, names_anywhere=True) for item in globs]
            filters.append(lambda rel: any(match(rel) for match in type_matchers))
        return await trio.to_thread.run_sync(lambda: self._search(arguments, context, regex, root, filters))

    def _search(
        self,
        arguments: Mapping[str, Any],
        context: ToolContext,
        regex: re.Pattern[str],
        root: Path,
        filters: list[Callable[[str], bool]],
    ) -> ToolResult:
        mode = str(arguments.get("output_mode") or "files_with_matches")
        around = int(arguments.get("-C") or arguments.get("context") or 0)
        before, after = int(arguments.get("-B") or around), int(arguments.get("-A") or around)
        numbers = arguments.get("-n", True) is not False
        skipped: list[str] = []
        entries: list[str] = []
        matched_files: list[Path] = []
        total = 0
        for path in searched_files(context.workspace, root, self.policy):
            rel = relative(context.workspace, path)
            if filters and not all(keep(rel) for keep in filters):
                continue
            if arguments.get("multiline"):
                hits = _multiline_hits(path, regex, skipped, rel)
            else:
                hits = matching_lines(path, regex, skipped, rel)
            if not hits:
                continue
            matched_files.append(path)
            total += len(hits)
            if mode == "count":
                entries.append(f"{path}:{len(hits)}")
            elif mode == "content":
                entries.extend(_content_lines(path, hits, regex, before, after, numbers, bool(arguments.get("-o"))))
        if mode == "files_with_matches":
            entries = [str(path) for path in _by_mtime(matched_files)]
        start = int(arguments.get("offset") or 0)
        head_limit = arguments.get("head_limit")
        limit = GREP_HEAD_LIMIT if head_limit is None else int(head_limit)
        page = entries[start:] if limit == 0 else entries[start : start + limit]
        more = "" if limit == 0 or start + limit >= len(entries) else (
            f"\n\n[Showing results with pagination = limit: {limit}, offset: {start}]"
        )
        if mode == "files_with_matches":
            text = f"Found {len(entries)} file{'s' if len(entries) != 1 else ''}\n" + "\n".join(page) if entries else "No files found"
        elif mode == "count":
            summary = f"\n\nFound {total} total occurrence{'s' if total != 1 else ''} across {len(entries)} file{'s' if len(entries) != 1 else ''}."
            text = ("\n".join(page) + summary) if entries else "No matches found"
        else:
            text = "\n".join(page) if entries else "No matches found"
        return ToolResult(content=text + more)


def _multiline_hits(path: Path, regex: re.Pattern[str], skipped: list[str], rel: str) -> list[tuple[int, str]]:
    whole = matching_lines(path, re.compile(""), skipped, rel)  # every line, with the same text checks
    text = "\n".join(line for _, line in whole)
    hits = []
    for match in regex.finditer(text):
        number = text.count("\n", 0, match.start()) + 1
        hits.append((number, whole[number - 1][1] if whole else ""))
    return hits


def _content_lines(
    path: Path, hits: list[tuple[int, str]], regex: re.Pattern[str], before: int, after: int, numbers: bool,
    only_matching: bool,
) -> list[str]:
    if only_matching:
        return [f"{path}:{number}:{m}" if numbers else f"{path}:{m}" for number, line in hits for m in regex.findall(line)]
    if not before and not after:
        return [f"{path}:{number}:{line}" if numbers else f"{path}:{line}" for number, line in hits]
    lines = path.read_text(errors="replace").splitlines()
    wanted: dict[int, bool] = {}
    for number, _ in hits:
        for other in range(max(1, number - before), min(len(lines), number + after) + 1):
            wanted.setdefault(other, False)
        wanted[number] = True
    out: list[str] = []
    previous = 0
    for number in sorted(wanted):
        if previous and number > previous + 1:
            out.append("--")
        sep = ":" if wanted[number] else "-"
        out.append(f"{path}{sep}{number}{sep}{lines[number - 1]}" if numbers else f"{path}{sep}{lines[number - 1]}")
        previous = number
    return out


# --- NotebookEdit --------------------------------------------------------------------------------------------------


@attrs.frozen
class NotebookEdit:
    spec: ToolSpec = ToolSpec(
        name="NotebookEdit",
        family=FAMILY,
        kinds=("fs.write",),
        description="Replace, insert or delete a cell of a Jupyter notebook (.ipynb) in the workspace.",
        input_schema=_schema(
            {
                "notebook_path": {"type": "string", "description": "The path to the notebook"},
                "cell_id": {"type": "string", "description": "The ID of the cell to edit (or insert after)"},
                "new_source": {"type": "string", "description": "The new source for the cell"},
                "cell_type": {"type": "string", "enum": ["code", "markdown"]},
                "edit_mode": {"type": "string", "enum": ["replace", "insert", "delete"]},
            },
            ["notebook_path", "new_source"],
        ),
    )

    def actions(self, arguments: Mapping[str, Any]) -> Sequence[Action]:
        return [Action(kind="fs.write", paths=(str(arguments["notebook_path"]),))]

    async def run(self, arguments: Mapping[str, Any], context: ToolContext) -> ToolResult:
        shown = str(arguments["notebook_path"])
        path = target(context, shown)
        if path.suffix != ".ipynb":
            raise ToolInputError("File must be a Jupyter notebook (.ipynb file). For editing other file types, use the Edit tool.")
        before = await trio.to_thread.run_sync(read_before, path)
        if before is None:
            raise ToolInputError(f"Notebook file does not exist: {shown}")
        try:
            notebook = json.loads(decode(before, shown))
        except json.JSONDecodeError as exc:
            raise ToolInputError(f"Notebook is not valid JSON ({exc}); fix the file first") from None
        cells = notebook.get("cells") if isinstance(notebook, dict) else None
        if not isinstance(cells, list):
            raise ToolInputError(f"{shown} has no cells list; it is not a Jupyter notebook")
        message = _edit_cells(cells, arguments)
        data = (json.dumps(notebook, indent=1, ensure_ascii=False) + "\n").encode()
        written = await record_write(context, path, data, tool="NotebookEdit", before=before)
        return attrs.evolve(written, content=message)


def _cell_index(cells: list[Any], cell_id: str) -> int:
    for index, cell in enumerate(cells):
        if isinstance(cell, dict) and cell.get("id") == cell_id:
            return index
    bare = cell_id.removeprefix("cell-")
    if bare.isdigit() and int(bare) < len(cells):
        return int(bare)
    raise ToolInputError(f'Cell with ID "{cell_id}" not found in notebook.')


def _edit_cells(cells: list[Any], arguments: Mapping[str, Any]) -> str:
    mode = str(arguments.get("edit_mode") or "replace")
    cell_id = arguments.get("cell_id")
    source = str(arguments["new_source"])
    if mode == "insert":
        kind = arguments.get("cell_type")
        if kind is None:
            raise ToolInputError("Cell type is required when using edit_mode=insert.")
        at = 0 if cell_id is None else _cell_index(cells, str(cell_id)) + 1
        new_id = uuid.uuid4().hex[:8]
        cell: dict[str, Any] = {"cell_type": kind, "id": new_id, "metadata": {}, "source": source.splitlines(keepends=True)}
        if kind == "code":
            cell.update(execution_count=None, outputs=[])
        cells.insert(at, cell)
        return f"Inserted cell {new_id} with {source}"
    if cell_id is None:
        raise ToolInputError("Cell ID must be specified when not inserting a new cell.")
    index = _cell_index(cells, str(cell_id))
    if mode == "delete":
        del cells[index]
        return f"Deleted cell {cell_id}"
    cell = cells[index]
    kind = arguments.get("cell_type") or cell.get("cell_type", "code")
    cell["cell_type"] = kind
    cell["source"] = source.splitlines(keepends=True)
    if kind == "code":
        cell["execution_count"] = None
        cell["outputs"] = []
    else:
        cell.pop("execution_count", None)
        cell.pop("outputs", None)
    return f"Updated cell {cell_id} with {source}"


# --- WebFetch ------------------------------------------------------------------------------------------------------

FETCH_MAX_BYTES = 5 * 1024 * 1024
FETCH_TIMEOUT_S = 30.0
FETCH_PAGE_CHARS = 20_000
FETCH_MAX_REDIRECTS = 5


@attrs.frozen
class WebFetch:
    allowed_hosts: tuple[str, ...]
    spec: ToolSpec = ToolSpec(
        name="WebFetch",
        family=FAMILY,
        kinds=("net.fetch",),
        description=(
            "Fetch a public http(s) URL and return its text (HTML reduced to text), or the answer to the prompt "
            "about it when lynkr can ask a model. Private, loopback and link-local addresses are refused."
        ),
        input_schema=_schema(
            {
                "url": {"type": "string", "format": "uri", "description": "The URL to fetch content from"},
                "prompt": {"type": "string", "description": "The prompt to run on the fetched content"},
                "offset": {"type": "number", "description": "Character position in the page text to start from"},
            },
            ["url", "prompt"],
        ),
    )

    def actions(self, arguments: Mapping[str, Any]) -> Sequence[Action]:
        url = str(arguments["url"])
        if urlsplit(url).scheme not in ("http", "https"):
            raise ToolInputError(f"{url} is not an http(s) URL; WebFetch fetches web pages only")
        return [Action(kind="net.fetch", url=url)]

    async def run(self, arguments: Mapping[str, Any], context: ToolContext) -> ToolResult:
        url = str(arguments["url"])
        async with httpx.AsyncClient(timeout=FETCH_TIMEOUT_S, follow_redirects=False, trust_env=False) as client:
            for _ in range(FETCH_MAX_REDIRECTS + 1):
                # Every hop is judged again: a public page may redirect to a private address.
                problem = await fetch_problem(url, self.allowed_hosts)
                if problem is not None:
                    return ToolResult(content=f"lynkr's policy refused this WebFetch: {problem}", is_error=True)
                async with client.stream("GET", url, headers={"user-agent": "lynkr-webfetch"}) as response:
                    if response.is_redirect and "location" in response.headers:
                        url = str(response.url.join(response.headers["location"]))
                        continue
                    body = bytearray()
                    async for chunk in response.aiter_bytes():
                        body += chunk
                        if len(body) > FETCH_MAX_BYTES:
                            break
                    status, media_type = response.status_code, response.headers.get("content-type", "")
                    charset = response.charset_encoding or "utf-8"
                break
            else:
                return ToolResult(content=f"{arguments['url']} redirects more than {FETCH_MAX_REDIRECTS} times", is_error=True)
        text = bytes(body[:FETCH_MAX_BYTES]).decode(charset, errors="replace")
        if "html" in media_type or text.lstrip()[:15].lower().startswith(("<!doctype html", "<html")):
            text = html_text(text)
        if status >= 400:
            return ToolResult(content=f"Request failed with status code {status}\n{text[:2000]}", is_error=True)
        start = int(arguments.get("offset") or 0)
        page = text[start : start + FETCH_PAGE_CHARS]
        if context.summarize is not None and start == 0:
            answer = await context.summarize(f"{arguments['prompt']}\n\nWeb page content of {url}:\n{page}")
            return ToolResult(content=answer)
        more = start + FETCH_PAGE_CHARS < len(text)
        note = f"\n\n[page text continues: call WebFetch again with offset={start + FETCH_PAGE_CHARS}]" if more else ""
        return ToolResult(content=f"Content of {url} (status {status}):\n{page}{note}")


_SCRIPTS = re.compile(r"<(script|style|noscript)\b.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
_BREAKS = re.compile(r"<(br|/p|/div|/h[1-6]|/li|/tr|p|div|h[1-6]|li|tr)\b[^>]*>", re.IGNORECASE)
_TAGS = re.compile(r"<[^>]+>")
_BLANK_LINES = re.compile(r"\n\s*\n+")


def html_text(html: str) -> str:
    """A readable text of an HTML page: scripts and styles dropped, block ends as line breaks, entities decoded."""
    text = _SCRIPTS.sub(" ", html)
    text = _BREAKS.sub("\n", text)
    text = _TAGS.sub("", text)
    text = htmllib.unescape(text)
    lines = [" ".join(line.split()) for line in text.splitlines()]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def tools(config: Config) -> list[Tool]:
    policy = file_policy(config)
    return [
        Bash(),
        Read(),
        Write(),
        Edit(),
        Glob(policy),
        Grep(policy),
        NotebookEdit(),
        WebFetch(config.tools.web_fetch_allowed_hosts),
    ]


PROJECTIONS = (edits.PROJECTION,)
