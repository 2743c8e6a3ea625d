"""Unified diffs: parsing them and applying them to text, all in memory (sans-IO).

``edit_patch`` computes every file's new text before it writes anything, so a patch with one hunk that does
not apply changes nothing.  A hunk applies where its context and removed lines match exactly, at the line its
header names or, when the file moved on a little, at the nearest line where they do (like ``patch``'s offset,
without fuzz: a context line that differs is a failure, named with the line that differs).
"""

from __future__ import annotations

import re

import attrs

_HUNK_HEADER = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@(.*)$")
NO_NEWLINE = "\\ No newline at end of file"


class PatchError(ValueError):
    """The patch is malformed, or one of its hunks does not apply; the message names which and why."""


@attrs.frozen
class Hunk:
    old_start: int  # 1-based; 0 for an empty old side
    old_count: int
    new_start: int
    new_count: int
    lines: tuple[str, ...]  # each starts with " ", "-" or "+"
    header: str
    old_ends_without_newline: bool = False
    new_ends_without_newline: bool = False

    @property
    def old(self) -> list[str]:
        return [line[1:] for line in self.lines if line[0] in " -"]

    @property
    def new(self) -> list[str]:
        return [line[1:] for line in self.lines if line[0] in " +"]


@attrs.frozen
class FilePatch:
    old_path: str | None  # None: the file is created
    new_path: str | None  # None: the file is deleted
    hunks: tuple[Hunk, ...]

    @property
    def path(self) -> str:
        path = self.new_path or self.old_path
        assert path is not None
        return path


def _strip_prefix(raw: str) -> str | None:
    path = raw.split("\t", 1)[0].strip()
    if path == "/dev/null":
        return None
    if path.startswith(("a/", "b/")):
        return path[2:]
    return path


def parse(text: str) -> list[FilePatch]:
    """The file patches of a unified diff (``git diff`` or ``diff -u`` output)."""
    lines = text.splitlines()
    patches: list[FilePatch] = []
    index = 0
    while index < len(lines):
        if not lines[index].startswith("--- ") or index + 1 >= len(lines) or not lines[index + 1].startswith("+++ "):
            index += 1
            continue
        old_path, new_path = _strip_prefix(lines[index][4:]), _strip_prefix(lines[index + 1][4:])
        if old_path is None and new_path is None:
            raise PatchError(f"line {index + 1}: both sides of the file header are /dev/null")
        index += 2
        hunks: list[Hunk] = []
        while index < len(lines) and lines[index].startswith("@@"):
            hunk, index = _hunk(lines, index, len(hunks) + 1, new_path or old_path or "")
            hunks.append(hunk)
        if not hunks:
            raise PatchError(f"the patch for {new_path or old_path} has no hunks (@@ ... @@ lines)")
        patches.append(FilePatch(old_path=old_path, new_path=new_path, hunks=tuple(hunks)))
    if not patches:
        raise PatchError("no file header found; a unified diff starts each file with '--- a/path' and '+++ b/path'")
    return patches


def _hunk(lines: list[str], index: int, number: int, path: str) -> tuple[Hunk, int]:
    header = lines[index]
    match = _HUNK_HEADER.match(header)
    if match is None:
        raise PatchError(f"hunk {number} of {path}: {header!r} is not a hunk header like '@@ -1,3 +1,4 @@'")
    old_start, new_start = int(match.group(1)), int(match.group(3))
    old_count = int(match.group(2)) if match.group(2) is not None else 1
    new_count = int(match.group(4)) if match.group(4) is not None else 1
    body: list[str] = []
    old_seen = new_seen = 0
    old_no_newline = new_no_newline = False
    index += 1
    while index < len(lines) and (old_seen < old_count or new_seen < new_count):
        line = lines[index]
        if line == NO_NEWLINE:
            index += 1
            continue
        if line == "":
            line = " "  # some tools drop the space of an empty context line
        kind = line[0]
        if kind not in " -+":
            raise PatchError(
                f"hunk {number} of {path} ({header}): line {index + 1} starts with {kind!r}; "
                f"each line of a hunk starts with ' ', '-' or '+' (the header promised {old_count} old and "
                f"{new_count} new lines)"
            )
        body.append(line)
        old_seen += kind in " -"
        new_seen += kind in " +"
        index += 1
        if index < len(lines) and lines[index] == NO_NEWLINE:
            old_no_newline |= kind in " -"
            new_no_newline |= kind in " +"
    if old_seen != old_count or new_seen != new_count:
        raise PatchError(
            f"hunk {number} of {path} ({header}) ends early: it has {old_seen} old and {new_seen} new lines, "
            f"its header says {old_count} and {new_count}"
        )
    while index < len(lines) and lines[index] == NO_NEWLINE:
        index += 1
    hunk = Hunk(
        old_start=old_start,
        old_count=old_count,
        new_start=new_start,
        new_count=new_count,
        lines=tuple(body),
        header=header,
        old_ends_without_newline=old_no_newline,
        new_ends_without_newline=new_no_newline,
    )
    return hunk, index


def apply(text: str | None, patch: FilePatch, *, max_offset: int = 200) -> str | None:
    """The file's text after ``patch`` (None when the patch deletes it); :class:`PatchError` naming the hunk."""
    if patch.old_path is None:
        if text is not None:
            raise PatchError(f"the patch creates {patch.path}, which already exists")
        lines: list[str] = []
        ends_with_newline = True
    else:
        if text is None:
            raise PatchError(f"the patch changes {patch.path}, which does not exist")
        lines = text.splitlines()
        ends_with_newline = text.endswith("\n") or text == ""
    shift = 0
    for number, hunk in enumerate(patch.hunks, start=1):
        old = hunk.old
        wanted = max(hunk.old_start - 1, 0) + shift if hunk.old_count else hunk.old_start + shift
        at = _locate(lines, old, wanted, max_offset)
        if at is None:
            raise PatchError(_mismatch(lines, hunk, number, patch.path, wanted))
        lines[at : at + len(old)] = hunk.new
        shift += len(hunk.new) - len(old)
        if at + len(hunk.new) >= len(lines):
            if hunk.new_ends_without_newline:
                ends_with_newline = False
            elif hunk.old_ends_without_newline:
                ends_with_newline = True
    if patch.new_path is None:
        if lines:
            raise PatchError(f"the patch deletes {patch.path}, but lines would remain; the file differs from the patch")
        return None
    return "\n".join(lines) + ("\n" if lines and ends_with_newline else "")


def _locate(lines: list[str], old: list[str], wanted: int, max_offset: int) -> int | None:
    for offset in range(max_offset + 1):
        for at in (wanted - offset, wanted + offset) if offset else (wanted,):
            if 0 <= at <= len(lines) - len(old) and lines[at : at + len(old)] == old:
                return at
    return None


def _mismatch(lines: list[str], hunk: Hunk, number: int, path: str, wanted: int) -> str:
    where = f"hunk {number} of {path} ({hunk.header.split(' @@')[0]} @@) does not apply"
    for index, expected in enumerate(hunk.old):
        line_number = wanted + index
        found = lines[line_number] if 0 <= line_number < len(lines) else None
        if found != expected:
            got = "the end of the file" if found is None else repr(found)
            return (
                f"{where}: at line {line_number + 1} it expects {expected!r} but the file has {got} "
                "(searched 200 lines either side too). Nothing was written; read the file again and "
                "make the patch against its current text"
            )
    return f"{where}. Nothing was written; read the file again and make the patch against its current text"
