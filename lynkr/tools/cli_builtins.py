"""Claude Code's built-in tools under their own names, for server mode: same inputs, results shaped alike.

When lynkr runs the tools (``TOOL_EXECUTION_MODE=server``) the model still calls ``Bash``, ``Read``,
``Write``, ``Edit`` and ``NotebookEdit`` as the CLI defined them (``Glob`` and ``Grep`` are in
:mod:`lynkr.tools.cli_search`, ``WebFetch`` in :mod:`lynkr.tools.cli_web`).  These accept exactly the CLI's input shapes and answer the
way the CLI does: ``Exit code N`` first when a command fails, ``(Bash completed with no output)``, ``cat -n``
numbered lines for ``Read``, ``File created successfully at: ...`` and ``<tool_use_error>...</tool_use_error>``
for input the tool cannot use.  Each turns its input into the same canonical actions as lynkr's own tools
(``Bash`` into ``shell``, ``Read`` into ``fs.read``), so the policy judges them alike.
"""

from __future__ import annotations

import base64
import json
import os
import shlex
import tempfile
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import trio

from lynkr.tools import edits
from lynkr.tools.base import Action, Tool, ToolContext, ToolInputError, ToolResult, ToolSpec
from lynkr.tools.cmdline import shell_actions
from lynkr.tools.edits import read_before, record_write
from lynkr.tools.shell import (
    CWD_PROJECTION,
    MAX_TIMEOUT_MS,
    bash_cwd,
    follow_cwd,
    format_completed,
    run_command,
    timeout_of,
)
from lynkr.tools.text import IMAGE_TYPES, check_file, decode, describe_size, lines_of, numbered, read_text
from lynkr.tools.workspace import target

if TYPE_CHECKING:
    from lynkr.config import Config

FAMILY = "cli"
READ_DEFAULT_LIMIT = 2000
READ_MAX_BYTES = 256 * 1024  # a whole-file Read above this asks for offset/limit, as the CLI does
IMAGE_MAX_BYTES = 5 * 1024 * 1024


def cli_schema(properties: Mapping[str, Any], required: Sequence[str]) -> dict[str, Any]:
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
        input_schema=cli_schema(
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
        return shell_actions(str(arguments["command"]), session_cwd=True)

    async def run(self, arguments: Mapping[str, Any], context: ToolContext) -> ToolResult:
        timeout_s = timeout_of(arguments, "timeout", context.settings.shell_timeout_ms)
        start = bash_cwd(context)
        handle, cwd_file = await trio.to_thread.run_sync(lambda: tempfile.mkstemp(prefix="lynkr-cwd-"))
        os.close(handle)
        try:
            # The folder the command ends in is where the next call starts, as in the CLI: the trailer keeps
            # the command's own exit status.
            trailer = f"\n\n__lynkr_status=$?\npwd -P >| {shlex.quote(cwd_file)}\nexit $__lynkr_status\n"
            completed = await run_command(
                str(arguments["command"]) + trailer,
                cwd=start,
                environ=context.environ,
                timeout_s=timeout_s,
                limit_bytes=context.settings.output_limit_bytes,
                sandbox=context.sandbox,
                writable=(cwd_file,),
            )
            ended_in = (await trio.to_thread.run_sync(Path(cwd_file).read_text)).strip()
        finally:
            await trio.to_thread.run_sync(lambda: Path(cwd_file).unlink(missing_ok=True))
        result = format_completed(completed, timeout_s=timeout_s)
        return follow_cwd(result, context, start, ended_in)


# --- Read --------------------------------------------------------------------------------------------------------


@attrs.frozen
class Read:
    spec: ToolSpec = ToolSpec(
        name="Read",
        family=FAMILY,
        kinds=("fs.read",),
        description="Reads a file from the workspace; text comes back with line numbers (cat -n), images as images.",
        input_schema=cli_schema(
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
        input_schema=cli_schema(
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
        input_schema=cli_schema(
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


# --- NotebookEdit --------------------------------------------------------------------------------------------------


@attrs.frozen
class NotebookEdit:
    spec: ToolSpec = ToolSpec(
        name="NotebookEdit",
        family=FAMILY,
        kinds=("fs.write",),
        description="Replace, insert or delete a cell of a Jupyter notebook (.ipynb) in the workspace.",
        input_schema=cli_schema(
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


def tools(config: Config) -> list[Tool]:
    return [
        Bash(),
        Read(),
        Write(),
        Edit(),
        NotebookEdit(),
    ]


PROJECTIONS = (edits.PROJECTION, CWD_PROJECTION)
