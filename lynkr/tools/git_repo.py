"""Local git operations over pygit2, as plain blocking functions.

The tools call these through ``trio.to_thread.run_sync``; nothing here knows about trio.  Each function opens
the repository that contains the workspace, does one thing, and returns text shaped like git's own output so
a model (and a test) can read it the way it reads git.  A state git itself would stop at (conflicts, a
detached HEAD, no commits yet, no repository at all) raises :class:`GitStateError` with what to do next.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pygit2
from pygit2.enums import CheckoutStrategy, FileMode, FileStatus, RepositoryState, SortMode

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


# --- status -------------------------------------------------------------------------------------------------

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


# --- diff ---------------------------------------------------------------------------------------------------


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
    kept = [patch for patch in patches(found) if _matches(patch.delta.new_file.path, wanted) or _matches(
        patch.delta.old_file.path, wanted)]
    return "".join(patch.text or "" for patch in kept)


def patches(found: pygit2.Diff) -> Iterator[pygit2.Patch]:
    """The diff's patches (pygit2 types its iteration as possibly None, which it never is for a real diff)."""
    for patch in found:
        if patch is not None:
            yield patch


def checkout_tree(repo: pygit2.Repository, commit_: pygit2.Commit) -> None:
    """Make the working tree and index ``commit_``'s, refusing to overwrite local changes."""
    repo.checkout_tree(commit_, strategy=CheckoutStrategy.SAFE)  # type: ignore[no-untyped-call]


def _matches(path: str, specs: Iterable[str]) -> bool:
    return any(spec == "." or path == spec or path.startswith(spec.rstrip("/") + "/") for spec in specs)


# --- stage and unstage --------------------------------------------------------------------------------------


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
        if not flags & _TRACKED_CHANGES or not _matches(path, specs):
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
    candidates = sorted(path for path in in_index.keys() | head_files.keys() if _matches(path, specs))
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


# --- commit -------------------------------------------------------------------------------------------------


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


# --- log and branches ---------------------------------------------------------------------------------------


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


def subject(commit_: pygit2.Commit) -> str:
    return commit_.message.splitlines()[0] if commit_.message.strip() else ""


def _touches(repo: pygit2.Repository, item: pygit2.Commit, specs: list[str]) -> bool:
    old = item.parents[0].tree if item.parents else empty_tree(repo)
    return any(
        _matches(patch.delta.new_file.path, specs) or _matches(patch.delta.old_file.path, specs)
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


# --- checkout and stash -------------------------------------------------------------------------------------


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
