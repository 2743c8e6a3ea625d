"""The repository underneath every git tool: finding it, naming its state, and the small pygit2 helpers the
git modules share.  Blocking code: the tools call it through ``trio.to_thread.run_sync``.

A state git itself would stop at (conflicts, a detached HEAD, no commits yet, no repository at all) raises
:class:`GitStateError`, whose message says what to do next; the tools turn it into an error result.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pygit2
from pygit2.enums import CheckoutStrategy, SortMode


DEFAULT_NAME = "lynkr"


DEFAULT_EMAIL = "lynkr@localhost"


class GitStateError(Exception):
    """The repository is in a state where the operation cannot go ahead; the message says what to do."""


def open_repository(workspace: Path) -> pygit2.Repository:
    found = pygit2.discover_repository(str(workspace))
    if found is None:
        raise GitStateError(
            f"{workspace} is not inside a git repository; run `git init` there (or point WORKSPACE_ROOT at one)"
        )
    repo = pygit2.Repository(found)
    if repo.is_bare:
        raise GitStateError(f"{found} is a bare repository with no working tree; git tools need a checkout")
    return repo


def workdir(repo: pygit2.Repository) -> Path:
    return Path(repo.workdir).resolve()


def pathspecs(repo: pygit2.Repository, workspace: Path, paths: Iterable[str]) -> list[str]:
    """Paths as the model gave them (relative to the workspace) made relative to the repository's root."""
    root = workdir(repo)
    specs = []
    for path in paths:
        absolute = (workspace / path).resolve()
        try:
            relative = absolute.relative_to(root)
        except ValueError:
            raise GitStateError(f"{path} is outside the repository at {root}") from None
        specs.append(relative.as_posix() if str(relative) != "." else ".")
    return specs


def signature(repo: pygit2.Repository) -> pygit2.Signature:
    """Who commits: the repository's configured user (local, then global), else lynkr's own clear default."""
    config = repo.config
    name = str(config["user.name"]) if "user.name" in config else DEFAULT_NAME
    email = str(config["user.email"]) if "user.email" in config else DEFAULT_EMAIL
    return pygit2.Signature(name, email)


def head_commit(repo: pygit2.Repository) -> pygit2.Commit:
    if repo.head_is_unborn:
        raise GitStateError(f"the repository has no commits yet on {current_branch_name(repo)}; commit something first")
    commit = repo.head.peel(pygit2.Commit)
    return commit


def current_branch_name(repo: pygit2.Repository) -> str:
    """The branch HEAD is on (also when it has no commits yet); raises when HEAD is detached."""
    if repo.head_is_detached:
        raise GitStateError(
            f"HEAD is detached at {str(repo.head.target)[:7]}; check out a branch first "
            "(workspace_git_checkout with branch, and create: true to keep these commits on a new branch)"
        )
    target = repo.references["HEAD"].target
    assert isinstance(target, str)
    return target.removeprefix("refs/heads/")


def refuse_conflicts(repo: pygit2.Repository) -> None:
    paths = conflicted_paths(repo)
    if paths:
        raise GitStateError(
            f"the repository has unresolved conflicts in {', '.join(paths)}; edit those files to resolve them, "
            "stage them with workspace_git_stage, then commit"
        )


def conflicted_paths(repo: pygit2.Repository) -> list[str]:
    conflicts = repo.index.conflicts
    if conflicts is None:
        return []
    names = set()
    for ancestor, ours, theirs in conflicts:
        entry = ours or theirs or ancestor
        names.add(entry.path)
    return sorted(names)


def resolve_commit(repo: pygit2.Repository, revision: str) -> pygit2.Commit:
    try:
        found = repo.revparse_single(revision)
        commit = found.peel(pygit2.Commit)
    except (KeyError, ValueError, pygit2.GitError, pygit2.InvalidSpecError):
        raise GitStateError(f"{revision!r} names no commit here; workspace_git_log lists commits") from None
    return commit


def empty_tree(repo: pygit2.Repository) -> pygit2.Tree:
    tree = repo.get(repo.TreeBuilder().write())
    assert isinstance(tree, pygit2.Tree)
    return tree


def range_ends(repo: pygit2.Repository, spec: str) -> tuple[pygit2.Commit | None, pygit2.Commit]:
    """``A..B`` (B against A), ``A...B`` (B against where it left A) or ``A`` (A against its first parent)."""
    if "..." in spec:
        left, right = spec.split("...", 1)
        start = resolve_commit(repo, left or "HEAD")
        end = resolve_commit(repo, right or "HEAD")
        base = repo.merge_base(start.id, end.id)
        if base is None:
            raise GitStateError(f"{left} and {right} share no history, so {spec} has no merge base")
        found = repo.get(base)
        assert isinstance(found, pygit2.Commit)
        return found, end
    if ".." in spec:
        left, right = spec.split("..", 1)
        return resolve_commit(repo, left or "HEAD"), resolve_commit(repo, right or "HEAD")
    commit = resolve_commit(repo, spec)
    return (commit.parents[0] if commit.parents else None), commit


def diff_between(repo: pygit2.Repository, spec: str, context_lines: int) -> pygit2.Diff:
    start, end = range_ends(repo, spec)
    old_tree = start.tree if start is not None else empty_tree(repo)
    return old_tree.diff_to_tree(end.tree, context_lines=context_lines)


def patches(found: pygit2.Diff) -> Iterator[pygit2.Patch]:
    """The diff's patches (pygit2 types its iteration as possibly None, which it never is for a real diff)."""
    for patch in found:
        if patch is not None:
            yield patch


def checkout_tree(repo: pygit2.Repository, commit_: pygit2.Commit) -> None:
    """Make the working tree and index ``commit_``'s, refusing to overwrite local changes."""
    repo.checkout_tree(commit_, strategy=CheckoutStrategy.SAFE)  # type: ignore[no-untyped-call]


def matches(path: str, specs: Iterable[str]) -> bool:
    return any(spec == "." or path == spec or path.startswith(spec.rstrip("/") + "/") for spec in specs)


def commits_in(repo: pygit2.Repository, spec: str | None, limit: int | None) -> list[pygit2.Commit]:
    """Newest first: the history of ``spec`` (a revision, or ``A..B`` for what B has that A has not)."""
    if spec is not None and ".." in spec:
        left, right = spec.replace("...", "..").split("..", 1)
        start, end = resolve_commit(repo, left or "HEAD"), resolve_commit(repo, right or "HEAD")
        walker = repo.walk(end.id, SortMode.TOPOLOGICAL | SortMode.TIME)
        walker.hide(start.id)
    else:
        tip = head_commit(repo) if spec is None else resolve_commit(repo, spec)
        walker = repo.walk(tip.id, SortMode.TOPOLOGICAL | SortMode.TIME)
    found = []
    for item in walker:
        found.append(item)
        if limit is not None and len(found) >= limit:
            break
    return found


def when(commit_: pygit2.Commit) -> str:
    zone = timezone(timedelta(minutes=commit_.commit_time_offset))
    return datetime.fromtimestamp(commit_.commit_time, zone).strftime("%Y-%m-%d %H:%M:%S %z")


def subject(commit_: pygit2.Commit) -> str:
    return commit_.message.splitlines()[0] if commit_.message.strip() else ""
