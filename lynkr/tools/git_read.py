"""What git shows: status, diffs, the log and branches, as text shaped like git's own output.

Blocking functions over pygit2 (the tools run them in a worker thread).  Each opens the repository that holds
the workspace and answers the way git would, so a model reads it as it reads git, and a test can compare the
two line by line.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pygit2
from pygit2.enums import FileStatus, RepositoryState

from lynkr.tools.git_repo import (
    commits_in,
    conflicted_paths,
    current_branch_name,
    diff_between,
    empty_tree,
    head_commit,
    matches,
    open_repository,
    patches,
    pathspecs,
    subject,
    when,
)


_INDEX_CODES = (
    (FileStatus.INDEX_NEW, "A"),
    (FileStatus.INDEX_MODIFIED, "M"),
    (FileStatus.INDEX_DELETED, "D"),
    (FileStatus.INDEX_RENAMED, "R"),
    (FileStatus.INDEX_TYPECHANGE, "T"),
)


_WORKTREE_CODES = (
    (FileStatus.WT_MODIFIED, "M"),
    (FileStatus.WT_DELETED, "D"),
    (FileStatus.WT_RENAMED, "R"),
    (FileStatus.WT_TYPECHANGE, "T"),
)


# git's two-letter codes for a conflict, by which of (ancestor, ours, theirs) exist.
_CONFLICT_CODES = {
    (True, True, True): "UU",
    (False, True, True): "AA",
    (True, False, True): "DU",
    (True, True, False): "UD",
    (False, True, False): "AU",
    (False, False, True): "UA",
    (True, False, False): "DD",
}


def status_lines(repo: pygit2.Repository) -> list[str]:
    """``git status --porcelain -uall`` entries: ``XY path``, in git's order (by path, untracked files last)."""
    conflicts = {}
    if repo.index.conflicts is not None:
        for ancestor, ours, theirs in repo.index.conflicts:
            entry = ours or theirs or ancestor
            conflicts[entry.path] = _CONFLICT_CODES[(ancestor is not None, ours is not None, theirs is not None)]
    lines = []
    for path, flags in repo.status(untracked_files="all").items():
        if flags & FileStatus.IGNORED:
            continue
        if path in conflicts:
            code = conflicts[path]
        elif flags & FileStatus.WT_NEW and not flags & ~FileStatus.WT_NEW:
            code = "??"
        else:
            x = next((letter for flag, letter in _INDEX_CODES if flags & flag), " ")
            y = next((letter for flag, letter in _WORKTREE_CODES if flags & flag), " ")
            code = x + y
        lines.append(f"{code} {path}")
    return sorted(lines, key=lambda line: (line.startswith("??"), line[3:]))


def branch_line(repo: pygit2.Repository) -> str:
    """What git's ``## ...`` header says: the branch, its upstream and how far apart they are."""
    if repo.head_is_detached:
        return f"HEAD (detached at {str(repo.head.target)[:7]})"
    name = current_branch_name(repo)
    if repo.head_is_unborn:
        return f"No commits yet on {name}"
    branch = repo.branches.local[name]
    upstream = branch.upstream
    if upstream is None:
        return name
    ahead, behind = repo.ahead_behind(branch.target, upstream.target)
    apart = ", ".join(
        text for count, text in ((ahead, f"ahead {ahead}"), (behind, f"behind {behind}")) if count
    )
    return f"{name}...{upstream.branch_name}" + (f" [{apart}]" if apart else "")


def status(workspace: Path) -> str:
    repo = open_repository(workspace)
    lines = [f"## {branch_line(repo)}"]
    state = repo.state()
    if state != RepositoryState.NONE:
        lines.append(f"# in the middle of a {state.name.lower().replace('_', ' ')}")
    conflicted = conflicted_paths(repo)
    if conflicted:
        lines.append(f"# unresolved conflicts: {', '.join(conflicted)}")
    entries = status_lines(repo)
    lines.extend(entries or ["nothing to commit, working tree clean"])
    return "\n".join(lines)


def diff(
    workspace: Path, *, revision: str | None, staged: bool, paths: Iterable[str], context_lines: int
) -> str:
    """The patch of a commit or range, of the index against HEAD, or of the working tree against the index."""
    repo = open_repository(workspace)
    if revision is not None:
        found = diff_between(repo, revision, context_lines)
    elif staged:
        tree = empty_tree(repo) if repo.head_is_unborn else head_commit(repo).tree
        found = repo.index.diff_to_tree(tree, context_lines=context_lines)
    else:
        found = repo.index.diff_to_workdir(context_lines=context_lines)
    wanted = pathspecs(repo, workspace, paths)
    if not wanted:
        return found.patch or ""
    kept = [patch for patch in patches(found) if matches(patch.delta.new_file.path, wanted) or matches(
        patch.delta.old_file.path, wanted)]
    return "".join(patch.text or "" for patch in kept)


def log(workspace: Path, *, revision: str | None, limit: int, paths: Iterable[str]) -> str:
    repo = open_repository(workspace)
    wanted = pathspecs(repo, workspace, paths)
    lines = []
    for item in commits_in(repo, revision, None if wanted else limit):
        if wanted and not _touches(repo, item, wanted):
            continue
        lines.append(f"{item.short_id} {when(item)} {item.author.name}: {subject(item)}")
        if len(lines) >= limit:
            break
    return "\n".join(lines) if lines else "No commits match."


def _touches(repo: pygit2.Repository, item: pygit2.Commit, specs: list[str]) -> bool:
    old = item.parents[0].tree if item.parents else empty_tree(repo)
    return any(
        matches(patch.delta.new_file.path, specs) or matches(patch.delta.old_file.path, specs)
        for patch in patches(old.diff_to_tree(item.tree))
    )


def branches(workspace: Path, *, remote: bool) -> str:
    repo = open_repository(workspace)
    current = None if repo.head_is_detached else current_branch_name(repo)
    lines = []
    if repo.head_is_detached:
        lines.append(f"* (HEAD detached at {str(repo.head.target)[:7]})")
    elif repo.head_is_unborn:
        lines.append(f"* {current} (no commits yet)")
    for name in sorted(repo.branches.local):
        branch = repo.branches.local[name]
        tip = branch.peel(pygit2.Commit)
        line = f"{'*' if name == current else ' '} {name} {tip.short_id} {subject(tip)}"
        upstream = branch.upstream
        if upstream is not None:
            ahead, behind = repo.ahead_behind(branch.target, upstream.target)
            line += f" [{upstream.branch_name}: ahead {ahead}, behind {behind}]"
        lines.append(line)
    if remote:
        for name in sorted(repo.branches.remote):
            if name.endswith("/HEAD"):
                continue
            tip = repo.branches.remote[name].peel(pygit2.Commit)
            lines.append(f"  remotes/{name} {tip.short_id}")
    return "\n".join(lines) if lines else "No branches."
