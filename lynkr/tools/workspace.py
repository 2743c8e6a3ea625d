"""Paths in the workspace: resolving what the model names, and matching the file policy's path patterns.

A path is judged by where it really leads.  :func:`resolve` follows every symlink of the existing part of the
path (``Path.resolve``) and collapses ``..``, so ``link/../x``, ``a/../../etc`` and a symlink pointing out of
the workspace all end up as the absolute place the operating system would open; only then is it compared with
the workspace root, by path components, never as a string prefix (``/ws-other`` is not inside ``/ws``).

Path patterns (``POLICY_FILE_BLOCKED_PATHS`` / ``POLICY_FILE_ALLOWED_PATHS``), each a glob:

* ``/etc/passwd``, ``/srv/data/*``: absolute; matches that path, or anything under it;
* ``.git/``, ``.ssh/`` (a trailing slash): a folder name; matches anything inside such a folder, anywhere;
* ``.env*``, ``*.pem``, ``id_rsa*`` (no slash): a name; matches any path with a component of that name;
* ``config/secrets/*`` (a slash inside): relative to the workspace root; matches that path or anything under it.
"""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

import attrs

from lynkr.tools.base import ToolContext, ToolInputError


class OutsideWorkspace(ValueError):
    """A path leads outside the workspace root."""


class UnresolvablePath(OutsideWorkspace):
    """A path the operating system could not follow either (a symlink loop, a folder it may not enter)."""


def resolve(workspace: Path, raw: str, *, cwd: Path | None = None) -> Path:
    """The absolute, symlink-free place ``raw`` leads to (relative paths start at ``cwd``, else the workspace).

    The existing part of the path is resolved by the operating system (every symlink followed, ``..`` taken
    after the link it follows); the part that does not exist yet is added to it by name.  A path the system
    cannot follow (a symlink loop) raises :class:`UnresolvablePath`: it is judged as leading nowhere allowed.
    """
    text = os.path.expanduser(raw) if raw.startswith("~") else raw
    path = Path(text)
    if not path.is_absolute():
        path = (cwd or workspace) / path
    return _real(path, raw)


def _real(path: Path, raw: str) -> Path:
    try:
        return Path(os.path.realpath(path, strict=True))
    except (FileNotFoundError, NotADirectoryError):
        if path.parent == path:
            return path
        base = _real(path.parent, raw)
        joined = base.parent if path.name == ".." else base / path.name
        try:  # the joined path may exist after all ("missing/../link"): follow it too
            return Path(os.path.realpath(joined, strict=True))
        except (FileNotFoundError, NotADirectoryError):
            return joined
        except OSError as exc:
            raise UnresolvablePath(f"{raw} cannot be followed ({exc.strerror}); use a plain path") from None
    except OSError as exc:
        raise UnresolvablePath(f"{raw} cannot be followed ({exc.strerror}); use a plain path inside the workspace") from None


def is_inside(workspace: Path, path: Path) -> bool:
    """Whether the resolved ``path`` is the workspace root or below it (``workspace`` must be resolved too)."""
    return path == workspace or workspace in path.parents


def inside(workspace: Path, raw: str, *, cwd: Path | None = None) -> Path:
    """``raw`` resolved, or :class:`OutsideWorkspace` with a message the model can act on."""
    path = resolve(workspace, raw, cwd=cwd)
    if not is_inside(workspace, path):
        raise OutsideWorkspace(
            f"{raw} leads to {path}, which is outside the workspace {workspace}; "
            "use a path inside the workspace (symlinks are followed before this check)"
        )
    return path


def relative(workspace: Path, path: Path) -> str:
    """``path`` (resolved, inside the workspace) relative to the root, with forward slashes; ``.`` for the root."""
    return PurePosixPath(path.relative_to(workspace)).as_posix() or "."


@attrs.frozen
class _Pattern:
    text: str
    kind: str  # "absolute", "folder-name", "folder-path", "name", "path"
    parts: tuple[str, ...]  # the glob's components (one for the name kinds)


def _compile(pattern: str) -> _Pattern:
    if pattern.startswith("/"):
        return _Pattern(text=pattern, kind="absolute", parts=PurePosixPath(pattern).parts)
    if pattern.endswith("/"):
        folder = pattern.rstrip("/")
        if "/" not in folder:
            return _Pattern(text=pattern, kind="folder-name", parts=(folder,))
        return _Pattern(text=pattern, kind="folder-path", parts=PurePosixPath(folder).parts)
    if "/" not in pattern:
        return _Pattern(text=pattern, kind="name", parts=(pattern,))
    return _Pattern(text=pattern, kind="path", parts=PurePosixPath(pattern).parts)


@attrs.frozen
class PathPatterns:
    """A set of path patterns (see the module docstring); ``match`` says which one a path hits."""

    patterns: tuple[str, ...]
    _compiled: tuple[_Pattern, ...] = attrs.field(init=False, repr=False, eq=False)
    # Every name and folder-name glob as one regex: most paths hit none, and are then cleared in one pass.
    _any_name: re.Pattern[str] | None = attrs.field(init=False, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        compiled = tuple(_compile(pattern) for pattern in self.patterns)
        globs = [p.parts[0] for p in compiled if p.kind in ("name", "folder-name")]
        any_name = re.compile("|".join(fnmatch.translate(glob) for glob in globs)) if globs else None
        object.__setattr__(self, "_compiled", compiled)
        object.__setattr__(self, "_any_name", any_name)

    @classmethod
    def of(cls, patterns: Iterable[str]) -> PathPatterns:
        return cls(tuple(pattern.strip() for pattern in patterns if pattern.strip()))

    def match(self, workspace: Path, path: Path) -> str | None:
        """The first pattern the absolute ``path`` hits, or None."""
        inside_workspace = is_inside(workspace, path)
        rel_parts = path.relative_to(workspace).parts if inside_workspace else None
        names = rel_parts if rel_parts is not None else path.parts[1:]
        named = self._any_name is not None and any(self._any_name.match(name) for name in names)
        for pattern in self._compiled:
            if pattern.kind in ("name", "folder-name") and not named:
                continue
            if _hits(pattern, path, names, rel_parts):
                return pattern.text
        return None


def _hits(pattern: _Pattern, path: Path, names: tuple[str, ...], rel_parts: tuple[str, ...] | None) -> bool:
    if pattern.kind == "absolute":
        return _prefix_match(pattern.parts, path.parts)
    if pattern.kind == "folder-name":
        folder = pattern.parts[0]
        # Inside such a folder: every component but the last one may be the folder; the last one if it is one.
        return any(fnmatch.fnmatchcase(name, folder) for name in names[:-1]) or (
            bool(names) and fnmatch.fnmatchcase(names[-1], folder) and path.is_dir()
        )
    if pattern.kind == "name":
        return any(fnmatch.fnmatchcase(name, pattern.parts[0]) for name in names)
    return rel_parts is not None and _prefix_match(pattern.parts, rel_parts)


def _prefix_match(pattern_parts: tuple[str, ...], parts: tuple[str, ...]) -> bool:
    """Whether ``parts`` is the pattern's path, or below it, component by component with globs."""
    if len(parts) < len(pattern_parts):
        return False
    return all(fnmatch.fnmatchcase(part, glob) for part, glob in zip(parts, pattern_parts, strict=False))


def folder(context: ToolContext, raw: object, *, name: str = "path") -> Path:
    """The existing workspace folder a tool works in; the workspace itself when none is given."""
    path = context.workspace if raw in (None, "", ".") else target(context, raw)
    if not path.is_dir():
        raise ToolInputError(f"{name} {raw} is not a folder in the workspace; give an existing folder")
    return path


def target(context: ToolContext, raw: object) -> Path:
    """The resolved path a file tool works on; outside the workspace is bad input (the policy refuses it first)."""
    try:
        return inside(context.workspace, str(raw))
    except OutsideWorkspace as exc:
        raise ToolInputError(str(exc)) from None
