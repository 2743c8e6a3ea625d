"""Claude Code's ``Glob`` and ``Grep`` under their own names, for clients that send them.

Both walk the workspace as :mod:`lynkr.tools.walk` does (``.gitignore`` honoured, blocked files never shown) and
answer in the CLI's shapes: absolute paths newest first, ``Found N files``, ``path:line:text``, ``No files found``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import trio

from lynkr.tools.base import Action, Tool, ToolContext, ToolInputError, ToolResult, ToolSpec
from lynkr.tools.cli_builtins import FAMILY, cli_schema
from lynkr.tools.files import compile_pattern, glob_matcher, matching_lines, searched_files
from lynkr.tools.policy import FilePolicy, file_policy
from lynkr.tools.walk import walk_files
from lynkr.tools.workspace import relative, target

if TYPE_CHECKING:
    from lynkr.config import Config

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
        input_schema=cli_schema(
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
        input_schema=cli_schema(
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


def tools(config: Config) -> list[Tool]:
    policy = file_policy(config)
    return [Glob(policy), Grep(policy)]


PROJECTIONS: tuple[()] = ()
