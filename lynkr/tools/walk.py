"""Walking the workspace the way a developer sees it: ``.gitignore`` honoured, ``.git`` and blocked paths skipped.

In a git repository the repository itself decides what is ignored (pygit2's ``path_is_ignored``, which reads
every ``.gitignore``, ``.git/info/exclude`` and the global excludes file).  Outside one, the ``.gitignore``
files of the workspace are read here with the same rules: ``#`` comments, ``!`` negation, a trailing ``/`` for
folders only, a ``/`` inside the pattern anchoring it to its ``.gitignore``'s folder, ``*``, ``?``, ``[...]``
and ``**``.  Blocking (``POLICY_FILE_BLOCKED_PATHS``) applies everywhere: a listing or a search never shows a
file the policy would refuse to read.

Everything here blocks; tools call it through a worker thread.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import attrs
import pygit2

from lynkr.tools.workspace import PathPatterns

SKIPPED_FOLDERS = frozenset({".git"})


@attrs.frozen
class _Rule:
    base: str  # the folder of the .gitignore, relative to the workspace ("" for the root)
    regex: re.Pattern[str]
    negated: bool
    folders_only: bool


def glob_regex(pattern: str) -> str:
    out: list[str] = []
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if pattern.startswith("**/", index):
            out.append("(?:.*/)?")
            index += 3
        elif pattern.startswith("/**", index) and index + 3 == len(pattern):
            out.append("/.*")
            index += 3
        elif pattern.startswith("**", index):
            out.append(".*")
            index += 2
        elif char == "*":
            out.append("[^/]*")
            index += 1
        elif char == "?":
            out.append("[^/]")
            index += 1
        elif char == "[":
            end = pattern.find("]", index + 1)
            if end < 0:
                out.append(re.escape(char))
                index += 1
            else:
                body = pattern[index + 1 : end].replace("\\", "\\\\")
                out.append("[" + ("^" + body[1:] if body.startswith("!") else body) + "]")
                index = end + 1
        elif char == "\\" and index + 1 < len(pattern):
            out.append(re.escape(pattern[index + 1]))
            index += 2
        else:
            out.append(re.escape(char))
            index += 1
    return "".join(out)


def _rules_of(gitignore: Path, base: str) -> list[_Rule]:
    try:
        text = gitignore.read_text(errors="replace")
    except OSError:
        return []
    rules = []
    for raw in text.splitlines():
        line = raw.rstrip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        line = line[1:] if negated else line
        folders_only = line.endswith("/")
        line = line.rstrip("/")
        if not line:
            continue
        anchored = "/" in line
        line = line.lstrip("/")
        body = glob_regex(line)
        regex = re.compile(("" if anchored else "(?:.*/)?") + body + "$")
        rules.append(_Rule(base=base, regex=regex, negated=negated, folders_only=folders_only))
    return rules


class Ignorer:
    """Answers "is this path ignored?" for paths relative to the workspace."""

    def __init__(self, workspace: Path) -> None:
        self.workspace = workspace
        self._repo: pygit2.Repository | None = None
        self._prefix = ""
        self._rules: list[_Rule] = []
        self._read: set[str] = set()
        try:
            found = pygit2.discover_repository(str(workspace))
        except pygit2.GitError:
            found = None
        if found is not None:
            repo = pygit2.Repository(found)
            if repo.workdir is not None:
                self._repo = repo
                workdir = Path(repo.workdir).resolve()
                if workspace == workdir or workdir in workspace.parents:
                    rel = workspace.relative_to(workdir).as_posix()
                    self._prefix = "" if rel == "." else rel + "/"

    def ignored(self, rel: str, *, is_dir: bool) -> bool:
        if self._repo is not None:
            return bool(self._repo.path_is_ignored(self._prefix + rel + ("/" if is_dir else "")))
        folder = rel.rsplit("/", 1)[0] if "/" in rel else ""
        self._load_up_to(folder)
        verdict = False
        for rule in self._rules:
            if rule.folders_only and not is_dir:
                continue
            if rule.base and not rel.startswith(rule.base + "/"):
                continue
            local = rel[len(rule.base) + 1 :] if rule.base else rel
            if rule.regex.match(local):
                verdict = not rule.negated
        return verdict

    def _load_up_to(self, folder: str) -> None:
        parts = folder.split("/") if folder else []
        for depth in range(len(parts) + 1):
            base = "/".join(parts[:depth])
            if base not in self._read:
                self._read.add(base)
                self._rules.extend(_rules_of(self.workspace / base / ".gitignore", base))


def walk_files(
    workspace: Path, start: Path, *, blocked: PathPatterns, ignorer: Ignorer | None = None
) -> Iterator[Path]:
    """Every file under ``start`` (a resolved folder inside the workspace), in a stable order, ignored and blocked
    files and folders left out.  Symlinked folders are not entered; symlinked files leading outside are skipped."""
    ignorer = ignorer or Ignorer(workspace)
    for folder, dirnames, filenames in os.walk(start):
        here = Path(folder)
        kept = []
        for name in sorted(dirnames):
            path = here / name
            rel = path.relative_to(workspace).as_posix()
            if name in SKIPPED_FOLDERS or ignorer.ignored(rel, is_dir=True) or blocked.match(workspace, path):
                continue
            kept.append(name)
        dirnames[:] = kept
        for name in sorted(filenames):
            path = here / name
            rel = path.relative_to(workspace).as_posix()
            if ignorer.ignored(rel, is_dir=False) or blocked.match(workspace, path):
                continue
            if path.is_symlink():
                try:
                    real = Path(os.path.realpath(path, strict=True))
                except OSError:  # dangling, or a loop: nothing to read there
                    continue
                if not (real == workspace or workspace in real.parents) or blocked.match(workspace, real):
                    continue
            yield path
