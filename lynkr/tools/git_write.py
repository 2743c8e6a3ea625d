"""What changes a repository locally: stage, unstage, commit, checkout and stash.

Blocking functions over pygit2 (the tools run them in a worker thread).  None of them overwrites a local
change: checkout and stash use libgit2's safe strategy, and a conflict stops them with what to do instead.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import pygit2
from pygit2.enums import CheckoutStrategy, FileMode, FileStatus, RepositoryState

from lynkr.tools.git_repo import (
    GitStateError,
    checkout_tree,
    current_branch_name,
    head_commit,
    matches,
    open_repository,
    pathspecs,
    refuse_conflicts,
    resolve_commit,
    signature,
)


def stage(workspace: Path, paths: Iterable[str], everything: bool) -> str:
    """``git add`` of the paths (new, changed and deleted files alike), or of everything with ``everything``."""
    repo = open_repository(workspace)
    specs = ["."] if everything else pathspecs(repo, workspace, paths)
    if not specs:
        raise GitStateError("name the paths to stage, or pass all: true")
    index = repo.index
    before = {entry.path: entry.id for entry in index}
    spec_list = [] if specs == ["."] else specs
    index.add_all(spec_list)
    _stage_tracked_changes(repo, index, specs)
    index.write()
    after = {entry.path: entry.id for entry in index}
    changed = sorted(path for path in before.keys() | after.keys() if before.get(path) != after.get(path))
    if not changed:
        return "Nothing new to stage in " + ", ".join(specs)
    return "Staged:\n" + "\n".join(f"  {path}" for path in changed)


_TRACKED_CHANGES = FileStatus.WT_MODIFIED | FileStatus.WT_DELETED | FileStatus.WT_TYPECHANGE


def _stage_tracked_changes(repo: pygit2.Repository, index: pygit2.Index, specs: list[str]) -> None:
    """What ``add_all`` leaves out: tracked files that changed or were deleted (``git add -u``)."""
    for path, flags in repo.status().items():
        if not flags & _TRACKED_CHANGES or not matches(path, specs):
            continue
        if flags & FileStatus.WT_DELETED:
            index.remove(path)
        else:
            index.add(path)


def unstage(workspace: Path, paths: Iterable[str], everything: bool) -> str:
    """``git restore --staged``: the index entries for the paths go back to HEAD's (or away, with no commits)."""
    repo = open_repository(workspace)
    specs = ["."] if everything else pathspecs(repo, workspace, paths)
    if not specs:
        raise GitStateError("name the paths to unstage, or pass all: true")
    head_files = {} if repo.head_is_unborn else dict(_tree_files(head_commit(repo).tree, ""))
    index = repo.index
    in_index = {entry.path: entry for entry in index}
    candidates = sorted(path for path in in_index.keys() | head_files.keys() if matches(path, specs))
    changed = []
    for path in candidates:
        original = head_files.get(path)
        current = in_index.get(path)
        if original is None:
            if current is not None:
                index.remove(path)
                changed.append(path)
        elif current is None or current.id != original[0] or current.mode != original[1]:
            index.add(pygit2.IndexEntry(path, original[0], FileMode(original[1])))
            changed.append(path)
    index.write()
    if not changed:
        return "Nothing staged in " + ", ".join(specs)
    return "Unstaged:\n" + "\n".join(f"  {path}" for path in changed)


def _tree_files(tree: pygit2.Tree, prefix: str) -> Iterator[tuple[str, tuple[pygit2.Oid, int]]]:
    for entry in tree:
        path = f"{prefix}{entry.name}"
        if isinstance(entry, pygit2.Tree):
            yield from _tree_files(entry, path + "/")
        else:
            yield path, (entry.id, entry.filemode)


def commit(workspace: Path, message: str, *, all_tracked: bool) -> str:
    """Commit the index (after staging every tracked change with ``all_tracked``), finishing a merge if one is open."""
    repo = open_repository(workspace)
    branch = current_branch_name(repo)
    refuse_conflicts(repo)
    index = repo.index
    if all_tracked:
        _stage_tracked_changes(repo, index, ["."])
        index.write()
    tree_id = index.write_tree()
    parents = [] if repo.head_is_unborn else [head_commit(repo).id]
    merging = repo.state() == RepositoryState.MERGE
    if merging:
        parents.extend(repo.listall_mergeheads())
    elif parents and head_commit(repo).tree_id == tree_id:
        raise GitStateError("nothing to commit: stage changes with workspace_git_stage first (or pass all: true)")
    elif not parents and len(index) == 0:
        raise GitStateError("nothing to commit: this repository has no commits and nothing is staged")
    who = signature(repo)
    text = message if message.endswith("\n") else message + "\n"
    new_id = repo.create_commit("HEAD", who, who, text, tree_id, parents)
    if merging:
        repo.state_cleanup()
    summary = message.strip().splitlines()[0]
    return f"[{branch} {str(new_id)[:7]}] {summary}"


def checkout(workspace: Path, *, branch: str | None, create: bool, start_point: str | None, detach: str | None) -> str:
    """Switch to ``branch`` (creating it from ``start_point`` with ``create``), or detach HEAD at ``detach``."""
    repo = open_repository(workspace)
    refuse_conflicts(repo)
    try:
        if detach is not None:
            target = resolve_commit(repo, detach)
            checkout_tree(repo, target)
            repo.set_head(target.id)
            return f"HEAD is now detached at {target.short_id}"
        assert branch is not None
        existing = repo.branches.local.get(branch)
        if create:
            if existing is not None:
                raise GitStateError(f"branch {branch} already exists; check it out without create")
            base = head_commit(repo) if start_point is None else resolve_commit(repo, start_point)
            created = repo.branches.local.create(branch, base)
            try:
                repo.checkout(created, strategy=CheckoutStrategy.SAFE)
            except pygit2.GitError:
                created.delete()
                raise
            return f"Switched to a new branch '{branch}' at {base.short_id}"
        if existing is None:
            remote_branch = _remote_branch_named(repo, branch)
            if remote_branch is None:
                raise GitStateError(f"no branch {branch}; workspace_git_branches lists them, or pass create: true")
            created = repo.branches.local.create(branch, remote_branch.peel(pygit2.Commit))
            created.upstream = remote_branch
            repo.checkout(created, strategy=CheckoutStrategy.SAFE)
            return f"Switched to a new branch '{branch}' tracking {remote_branch.branch_name}"
        repo.checkout(existing, strategy=CheckoutStrategy.SAFE)
        return f"Switched to branch '{branch}'"
    except pygit2.GitError as exc:
        raise GitStateError(
            f"checkout stopped: {exc}. Your local changes would be overwritten; commit them or stash them "
            "(workspace_git_stash) first"
        ) from None


def _remote_branch_named(repo: pygit2.Repository, name: str) -> pygit2.Branch | None:
    matches = [repo.branches.remote[full] for full in repo.branches.remote if full.split("/", 1)[-1] == name]
    return matches[0] if len(matches) == 1 else None


def stash(workspace: Path, *, operation: str, message: str | None, include_untracked: bool, index: int) -> str:
    repo = open_repository(workspace)
    if operation == "list":
        stashes = repo.listall_stashes()
        return "\n".join(f"stash@{{{n}}}: {item.message}" for n, item in enumerate(stashes)) or "No stashes."
    if operation == "push":
        head_commit(repo)
        refuse_conflicts(repo)
        try:
            repo.stash(signature(repo), message, include_untracked=include_untracked)
        except (KeyError, pygit2.GitError):
            raise GitStateError("no local changes to stash") from None
        return f"Saved working directory and index state: {repo.listall_stashes()[0].message}"
    count = len(repo.listall_stashes())
    if index >= count:
        raise GitStateError(f"there is no stash@{{{index}}}; there are {count} stashes (operation list shows them)")
    if operation == "drop":
        repo.stash_drop(index)
        return f"Dropped stash@{{{index}}}"
    try:
        if operation == "pop":
            repo.stash_pop(index, reinstate_index=True)
        else:
            repo.stash_apply(index, reinstate_index=True)
    except pygit2.GitError as exc:
        raise GitStateError(
            f"the stash does not apply cleanly ({exc}); commit or stash your current changes first"
        ) from None
    return f"Applied stash@{{{index}}}" + (" and dropped it" if operation == "pop" else "")
