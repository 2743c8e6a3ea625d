"""The workspace's ``.env`` file, read with python-dotenv.

lynkr runs inside the user's project, and the ``.env`` it finds there belongs to that project: its format is
the project's business.  A line lynkr cannot read is skipped with one warning naming the file and line, the way
python-dotenv itself behaves.  The exception is a line that sets one of lynkr's own variables: skipping
``LYNKR_API_KEY="...`` would run the daemon without the key its user meant to set, so that stops lynkr with a
message naming the fix.
"""

from __future__ import annotations

import io
import logging
import re
from pathlib import Path

from dotenv.parser import Binding, parse_stream

from lynkr.settings import ConfigError

log = logging.getLogger("lynkr.config")

# The name a broken assignment was trying to set: python-dotenv reports no key for such lines.
_ASSIGNMENT = re.compile(r"(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=")


def read_env_file(path: Path, *, own: frozenset[str]) -> dict[str, str]:
    """``KEY=VALUE`` pairs of ``path``, not interpolated; unreadable lines are warned about and skipped."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        log.warning("%s cannot be read (%s); lynkr ignored it", path, exc.strerror or exc)
        return {}
    # A stray non-UTF-8 byte in someone else's variable must not cost lynkr the whole file.
    text = data.decode("utf-8", errors="replace")
    values: dict[str, str] = {}
    for binding in parse_stream(io.StringIO(text)):
        if binding.key is not None and binding.value is not None and not binding.error:
            values[binding.key] = binding.value
            continue
        if binding.key is None and not binding.error:
            continue  # a comment or blank lines
        _unreadable(path, binding, own)
    return values


def _unreadable(path: Path, binding: Binding, own: frozenset[str]) -> None:
    statement = binding.original.string
    # python-dotenv counts the blank lines before a statement as part of it; point at the statement itself.
    line = binding.original.line + statement[: len(statement) - len(statement.lstrip())].count("\n")
    assignment = _ASSIGNMENT.match(statement.lstrip())
    name = binding.key or (assignment.group(1) if assignment else None)
    if name in own:
        raise ConfigError(
            f"{path}:{line}: the line setting {name} cannot be read; write it as {name}=value, "
            "with quotes around a value that holds spaces, quotes or #"
        )
    # The line may hold a secret (a key pasted on its own): the warning names at most the variable.
    if assignment:
        log.warning("%s:%d: the value of %s cannot be read; lynkr skipped this line", path, line, assignment.group(1))
    else:
        log.warning("%s:%d: this line is not KEY=value; lynkr skipped it", path, line)
