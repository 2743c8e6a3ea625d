"""Reading workspace files as text, with a clear tool error for everything that is not plain UTF-8 text.

Shared by lynkr's file tools and the CLI's built-ins.  Everything here blocks; callers use a worker thread.
"""

from __future__ import annotations

from pathlib import Path

from lynkr.tools.base import ToolInputError

BINARY_SNIFF_BYTES = 8192
MAX_LINE_CHARS = 2000  # longer lines are cut in numbered output, as the CLI does
MAX_EDIT_BYTES = 8 * 1024 * 1024  # files edited in memory (Edit, edit_patch, NotebookEdit) stay below this

IMAGE_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif", ".webp": "image/webp"}


def describe_size(size: int) -> str:
    return f"{size / 1024:.0f} KB" if size >= 1024 else f"{size} bytes"


def looks_binary(head: bytes) -> bool:
    return b"\0" in head


def check_file(path: Path, shown: str) -> int:
    """The size of the regular file at ``path``; a tool error naming ``shown`` when it is missing or a folder."""
    if not path.exists():
        raise ToolInputError(f"File does not exist: {shown}")
    if path.is_dir():
        raise ToolInputError(f"{shown} is a folder, not a file; list it with Glob or workspace_list instead")
    return path.stat().st_size


def decode(data: bytes, shown: str) -> str:
    """``data`` as text, or a tool error that says why it is not text and what to do instead."""
    if looks_binary(data[:BINARY_SNIFF_BYTES]):
        raise ToolInputError(
            f"{shown} is a binary file (it contains NUL bytes); this tool reads and edits text only"
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ToolInputError(
            f"{shown} is not valid UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start} cannot be "
            "decoded); convert it to UTF-8 first, or handle it with a shell command"
        ) from None


def read_text(path: Path, shown: str, *, max_bytes: int = MAX_EDIT_BYTES) -> str:
    """The whole file as text; a tool error for missing, folder, binary, non-UTF-8 or too large files."""
    size = check_file(path, shown)
    if size > max_bytes:
        raise ToolInputError(
            f"{shown} is {describe_size(size)}, larger than the {describe_size(max_bytes)} this tool handles in "
            "one piece; work on it with a shell command (sed, a script) instead"
        )
    return decode(path.read_bytes(), shown)


def lines_of(path: Path, shown: str, start: int, count: int) -> tuple[list[str], int]:
    """Lines ``start`` (1-based) to ``start + count - 1`` of the file, and how many lines it has.

    Reads the file as a stream, a bounded piece at a time, so a line range of a huge file (or a file that is
    one gigantic line) costs the lines kept, not the whole file.  Lines are cut at ``MAX_LINE_CHARS``.
    """
    with path.open("rb") as handle:
        head = handle.read(BINARY_SNIFF_BYTES)
        decode(head[: _utf8_boundary(head)], shown)  # refuses binary files before anything else
        handle.seek(0)
        chosen: list[str] = []
        total = 0
        piece_bytes = MAX_LINE_CHARS * 4  # enough for MAX_LINE_CHARS characters of any UTF-8 text
        while piece := handle.readline(piece_bytes):
            total += 1
            ended = piece.endswith(b"\n")
            while not ended:  # the rest of an over-long line: skipped, never held
                rest = handle.readline(piece_bytes)
                if not rest:
                    break
                ended = rest.endswith(b"\n")
            if start <= total < start + count:
                kept = piece if ended or len(piece) < piece_bytes else piece[: _utf8_boundary(piece)]
                chosen.append(decode(kept, f"{shown} line {total}").rstrip("\r\n"))
        return chosen, total


def _utf8_boundary(data: bytes) -> int:
    """Where the last complete UTF-8 character of a chunk cut at an arbitrary byte ends."""
    end = len(data)
    for back in range(1, min(4, end) + 1):
        byte = data[end - back]
        if byte & 0xC0 != 0x80:  # a lead byte (or ASCII): is its sequence complete?
            width = 1 if byte < 0x80 else 2 if byte >= 0xC0 and byte < 0xE0 else 3 if byte < 0xF0 else 4
            return end if back >= width else end - back
    return end


def numbered(lines: list[str], first: int) -> str:
    """``cat -n`` style lines as the CLI's Read returns them: number, a tab, the line (long lines cut)."""
    return "\n".join(
        f"{number}\t{line[:MAX_LINE_CHARS]}" for number, line in enumerate(lines, start=first)
    )
