"""git push and pull: through pygit2 where libgit2 can reach the credentials, else through the user's ``git``.

libgit2 speaks local paths, ``file://``, ``git://`` and anonymous HTTP(S) by itself.  It cannot use what the
user's own git setup provides: the SSH agent, keys and ``~/.ssh/config`` behind an SSH remote, a credential
helper behind an HTTPS remote that asks for a login, or a remote helper (``<transport>::<address>``).  So:

- SSH and remote-helper URLs go to ``git`` straight away;
- anything else is tried with pygit2, whose credentials callback refuses to guess: the first time the server
  asks for credentials, the attempt stops and ``git`` runs instead, with the user's helpers.

The result always says when ``git`` ran, and why.  ``git`` runs in the scrubbed environment, with prompts off
(no terminal is there to answer them), in its own process group under the shell timeout.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

import attrs
import pygit2
import trio
from pygit2.enums import FileStatus, MergeAnalysis

from lynkr.tools.git_repo import (
    GitStateError,
    checkout_tree,
    current_branch_name,
    head_commit,
    open_repository,
    refuse_conflicts,
    signature,
    workdir,
)
from lynkr.tools.subprocess_group import run_in_group

_URL_PASSWORD = re.compile(r"(?P<start>[A-Za-z][\w+.-]*://[^/\s:@]*):[^/\s@]*@")
_SCP_LIKE = re.compile(r"^(?:[\w.+-]+@)?[\w.-]+:(?!//)")
_REMOTE_HELPER = re.compile(r"^[A-Za-z][\w+.-]*::")


class _CredentialsOutOfReach(Exception):
    """The server asked libgit2 for credentials; only the user's git setup has them."""


@attrs.frozen(kw_only=True)
class RemotePlan:
    """Where a push or pull goes: the remote's name and URL, and the local and remote branch."""

    remote: str
    url: str
    branch: str
    remote_branch: str


@attrs.frozen(kw_only=True)
class RemoteOutcome:
    text: str
    used_git: bool
    reason: str | None  # why ``git`` ran instead of pygit2

    def report(self) -> str:
        if not self.used_git:
            return without_passwords(self.text)
        return without_passwords(f"{self.text}\n(ran your `git` command instead of libgit2: {self.reason})")


def without_passwords(text: str) -> str:
    """``https://user:token@host`` becomes ``https://user:***@host``: a URL's password never reaches the model."""
    return _URL_PASSWORD.sub(r"\g<start>:***@", text)


def why_libgit2_cannot(url: str) -> str | None:
    """Why this URL must go to ``git`` without trying libgit2 first, or None to try libgit2."""
    if _REMOTE_HELPER.match(url):
        return f"the remote helper git-remote-{url.split('::', 1)[0]} belongs to git, not libgit2"
    lowered = url.lower()
    if lowered.startswith(("ssh://", "git+ssh://", "ssh+git://")) or (
        _SCP_LIKE.match(url) and not Path(url).exists()
    ):
        return "SSH remotes need your SSH agent, keys and ~/.ssh/config, which libgit2 cannot use"
    return None


class _Callbacks(pygit2.RemoteCallbacks):
    def __init__(self) -> None:
        super().__init__()
        self.rejected: dict[str, str] = {}

    def credentials(self, url: str, username_from_url: str | None, allowed_types: object) -> pygit2.Username:
        raise _CredentialsOutOfReach(url)

    def push_update_reference(self, refname: str, message: str) -> None:
        if message:
            self.rejected[refname] = message


def plan(workspace: Path, remote: str | None, branch: str | None) -> RemotePlan:
    """The remote and branches a push or pull without arguments uses: the upstream's, else origin and the same name."""
    repo = open_repository(workspace)
    current = current_branch_name(repo)
    local = branch or current
    upstream = None
    found = repo.branches.local.get(local)
    if found is not None:
        upstream = found.upstream
    remote_name = remote or (upstream.remote_name if upstream is not None else None) or "origin"
    names = [name for name in repo.remotes.names() if name is not None]
    if remote_name not in names:
        known = ", ".join(names) or "none"
        raise GitStateError(f"no remote named {remote_name!r} (remotes: {known}); add one with `git remote add`")
    remote_branch = local
    if upstream is not None and upstream.remote_name == remote_name:
        remote_branch = upstream.branch_name.split("/", 1)[1]
    url = repo.remotes[remote_name].url or ""
    return RemotePlan(remote=remote_name, url=url, branch=local, remote_branch=remote_branch)


# --- push ---------------------------------------------------------------------------------------------------


async def push(
    workspace: Path, environ: Mapping[str, str], timeout_s: float, *, remote: str | None, branch: str | None,
    set_upstream: bool,
) -> RemoteOutcome:
    where = await trio.to_thread.run_sync(plan, workspace, remote, branch)
    reason = why_libgit2_cannot(where.url)
    if reason is None:
        try:
            text = await trio.to_thread.run_sync(_push_with_libgit2, workspace, where, set_upstream)
            return RemoteOutcome(text=text, used_git=False, reason=None)
        except _CredentialsOutOfReach:
            reason = "the remote asked for credentials, which only your git (its credential helper) can give"
    refspec = f"{where.branch}:{where.remote_branch}"
    argv = ["push", *(["--set-upstream"] if set_upstream else []), where.remote, refspec]
    text = await _run_git(workspace, environ, timeout_s, argv, "push")
    return RemoteOutcome(text=text, used_git=True, reason=reason)


def _push_with_libgit2(workspace: Path, where: RemotePlan, set_upstream: bool) -> str:
    repo = open_repository(workspace)
    head_commit(repo)
    if where.branch not in repo.branches.local:
        raise GitStateError(f"no local branch {where.branch} to push; workspace_git_branches lists them")
    callbacks = _Callbacks()
    refspec = f"refs/heads/{where.branch}:refs/heads/{where.remote_branch}"
    try:
        repo.remotes[where.remote].push([refspec], callbacks=callbacks)
    except pygit2.GitError as exc:
        raise GitStateError(without_passwords(_push_failure(str(exc)))) from None
    if callbacks.rejected:
        reasons = "; ".join(f"{ref}: {why}" for ref, why in callbacks.rejected.items())
        raise GitStateError(
            f"the remote rejected the push ({reasons}); if it has commits this branch lacks, pull first "
            "(workspace_git_pull), else the remote's rules refused it"
        )
    # Keep the remote-tracking branch in step, as git does after a push.
    tip = repo.branches.local[where.branch].target
    tracking = f"refs/remotes/{where.remote}/{where.remote_branch}"
    repo.references.create(tracking, tip, force=True)
    if set_upstream:
        repo.branches.local[where.branch].upstream = repo.branches.remote[f"{where.remote}/{where.remote_branch}"]
    return f"Pushed {where.branch} to {where.remote}/{where.remote_branch} ({where.url}) at {str(tip)[:7]}"


def _push_failure(message: str) -> str:
    if "non-fastforward" in message.replace("-", "") or "not present locally" in message:
        return f"the remote has commits this branch lacks ({message}); pull first (workspace_git_pull), then push"
    return f"push failed: {message}"


# --- pull ---------------------------------------------------------------------------------------------------


async def pull(
    workspace: Path, environ: Mapping[str, str], timeout_s: float, *, remote: str | None, branch: str | None,
    autostash: bool,
) -> RemoteOutcome:
    """Fetch and merge; with ``autostash`` (POLICY_GIT_AUTOSTASH), local changes are stashed around the merge."""
    where = await trio.to_thread.run_sync(plan, workspace, remote, branch)
    await trio.to_thread.run_sync(_refuse_pull_states, workspace)
    reason = why_libgit2_cannot(where.url)
    if reason is None:
        stashed = autostash and await trio.to_thread.run_sync(_stash_local_changes, workspace)
        text = ""
        try:
            text = await trio.to_thread.run_sync(_pull_with_libgit2, workspace, where)
        except _CredentialsOutOfReach:
            # Put the changes back: the user's git stashes them itself (--autostash).
            reason = "the remote asked for credentials, which only your git (its credential helper) can give"
        except GitStateError as exc:
            if stashed:
                raise GitStateError(f"{exc}\n{await trio.to_thread.run_sync(_restore_stash, workspace)}") from None
            raise
        if stashed:
            text += "\n" + await trio.to_thread.run_sync(_restore_stash, workspace)
        if reason is None:
            return RemoteOutcome(text=text, used_git=False, reason=None)
    who = await trio.to_thread.run_sync(lambda: signature(open_repository(workspace)))
    argv = [
        "-c", f"user.name={who.name}", "-c", f"user.email={who.email}",
        "pull", "--no-rebase", "--no-edit", *(["--autostash"] if autostash else []),
        where.remote, where.remote_branch,
    ]
    text = await _run_git(workspace, environ, timeout_s, argv, "pull")
    return RemoteOutcome(text=text, used_git=True, reason=reason)


def _refuse_pull_states(workspace: Path) -> None:
    repo = open_repository(workspace)
    current_branch_name(repo)
    refuse_conflicts(repo)


def _stash_local_changes(workspace: Path) -> bool:
    """Stash changes to tracked files, as ``git pull --autostash`` does; True when there were any."""
    repo = open_repository(workspace)
    untracked = FileStatus.WT_NEW | FileStatus.IGNORED
    tracked_changes = [path for path, flags in repo.status().items() if flags & ~untracked]
    if not tracked_changes or repo.head_is_unborn:
        return False
    repo.stash(signature(repo), "autostash before pull")
    return True


def _restore_stash(workspace: Path) -> str:
    repo = open_repository(workspace)
    try:
        repo.stash_pop(0, reinstate_index=True)
    except pygit2.GitError as exc:
        return (
            f"Your local changes did not apply cleanly after the pull ({exc}); they are kept as stash@{{0}} "
            "(workspace_git_stash with operation apply or pop)."
        )
    return "Your local changes were stashed around the pull and are back in place."


def _pull_with_libgit2(workspace: Path, where: RemotePlan) -> str:
    repo = open_repository(workspace)
    callbacks = _Callbacks()
    try:
        repo.remotes[where.remote].fetch(callbacks=callbacks)
    except pygit2.GitError as exc:
        raise GitStateError(without_passwords(f"fetch from {where.remote} ({where.url}) failed: {exc}")) from None
    fetched = repo.references.get(f"refs/remotes/{where.remote}/{where.remote_branch}")
    if fetched is None:
        raise GitStateError(
            f"{where.remote} has no branch {where.remote_branch}; push it first, or name another branch"
        )
    theirs = fetched.peel(pygit2.Commit)
    if repo.head_is_unborn:
        checkout_tree(repo, theirs)
        repo.references.create(f"refs/heads/{where.branch}", theirs.id, force=True)
        return f"Checked out {where.remote}/{where.remote_branch} at {theirs.short_id} into the empty {where.branch}"
    analysis, _ = repo.merge_analysis(theirs.id)
    if analysis & MergeAnalysis.UP_TO_DATE:
        return f"Already up to date with {where.remote}/{where.remote_branch}."
    ours = head_commit(repo)
    try:
        if analysis & MergeAnalysis.FASTFORWARD:
            checkout_tree(repo, theirs)
            repo.references[f"refs/heads/{where.branch}"].set_target(theirs.id, "pull: fast-forward")
            return f"Fast-forwarded {where.branch} from {ours.short_id} to {theirs.short_id}"
        repo.merge(theirs.id)
    except pygit2.GitError as exc:
        raise GitStateError(
            f"pull stopped before changing anything: {exc}. Commit or stash (workspace_git_stash) your local "
            "changes first"
        ) from None
    conflicted = sorted({(o or t or a).path for a, o, t in repo.index.conflicts or ()})
    if conflicted:
        raise GitStateError(
            f"pull merged {where.remote}/{where.remote_branch} with conflicts in {', '.join(conflicted)}; resolve "
            "them, stage them with workspace_git_stage and commit with workspace_git_commit"
        )
    who = signature(repo)
    tree = repo.index.write_tree()
    message = f"Merge branch '{where.remote_branch}' of {without_passwords(where.url)}\n"
    merged = repo.create_commit("HEAD", who, who, message, tree, [ours.id, theirs.id])
    repo.state_cleanup()
    return f"Merged {where.remote}/{where.remote_branch} into {where.branch}: {str(merged)[:7]}"


# --- the user's git -----------------------------------------------------------------------------------------


async def _run_git(workspace: Path, environ: Mapping[str, str], timeout_s: float, argv: list[str], what: str) -> str:
    env = dict(environ)
    # No terminal can answer a prompt: fail instead of hanging.  (ssh finds no terminal either, since the
    # command runs in a new session without one.)
    env["GIT_TERMINAL_PROMPT"] = "0"
    cwd = await trio.to_thread.run_sync(lambda: workdir(open_repository(workspace)))
    try:
        finished = await run_in_group(["git", *argv], cwd=cwd, environ=env, timeout_s=timeout_s)
    except OSError as exc:
        raise GitStateError(f"git {what} needs the `git` command, which could not run ({exc}); install git") from None
    output = without_passwords(finished.output.strip())
    if finished.timed_out:
        raise GitStateError(f"git {what} did not finish in {timeout_s:g} s and was stopped. Output so far:\n{output}")
    if finished.exit_code != 0:
        raise GitStateError(f"git {what} failed with exit code {finished.exit_code}:\n{output}")
    return output or f"git {what} finished."
