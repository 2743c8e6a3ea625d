"""The git tools on real temporary repositories, checked against the ``git`` command itself."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pygit2
import pytest
from pygit2.enums import ConfigLevel

from lynkr.tools import git
from lynkr.tools.base import Action, ToolState
from lynkr.tools.git_remote import why_libgit2_cannot, without_passwords
from tests import git_http_server
from tests.conftest import make_config
from tests.tool_context import Bench, bench

# The tests' own git commands ignore the machine's global and system configuration.
GIT_ENV = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull, "GIT_TERMINAL_PROMPT": "0"}


def sh(cwd: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, env=GIT_ENV, capture_output=True, text=True, check=False)
    assert done.returncode == 0, f"git {' '.join(args)}: {done.stderr}"
    return done.stdout


def init(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    sh(path, "init", "-q", "-b", "main")
    sh(path, "config", "user.name", "Ada Lovelace")
    sh(path, "config", "user.email", "ada@example.com")
    return path


def commit_file(repo: Path, name: str, text: str, message: str) -> None:
    (repo / name).parent.mkdir(parents=True, exist_ok=True)
    (repo / name).write_text(text)
    sh(repo, "add", name)
    sh(repo, "commit", "-q", "-m", message)


def _bench(tmp_path: Path, env: dict[str, str] | None = None) -> Bench:
    config = make_config(tmp_path, env)
    return bench(config, git.tools(config), git.PROJECTIONS)


@pytest.fixture
def repo_bench(tmp_path: Path) -> Bench:
    b = _bench(tmp_path)
    init(b.workspace)
    commit_file(b.workspace, "a.txt", "one\ntwo\nthree\n", "feat: first")
    commit_file(b.workspace, "src/b.py", "print('b')\n", "fix(core): second")
    return b


def entries(status_text: str) -> list[str]:
    return [line for line in status_text.splitlines() if not line.startswith(("##", "#", "nothing to commit"))]


def without_index_lines(patch: str) -> list[str]:
    # libgit2 and git abbreviate blob ids in "index" lines to different lengths; everything else must agree.
    return [line for line in patch.splitlines() if not line.startswith("index ")]


async def test_status_matches_git_porcelain(repo_bench: Bench) -> None:
    w = repo_bench.workspace
    (w / "a.txt").write_text("changed\n")
    (w / "new.txt").write_text("new\n")
    (w / "dir").mkdir()
    (w / "dir" / "deep.txt").write_text("deep\n")
    (w / "src" / "b.py").unlink()
    (w / "staged.txt").write_text("s\n")
    sh(w, "add", "staged.txt")
    (w / "staged.txt").write_text("s2\n")

    ours = await repo_bench.ok("workspace_git_status")
    assert ours.splitlines()[0] == "## main"
    assert entries(ours) == sh(w, "status", "--porcelain", "-uall").splitlines()
    assert {" M a.txt", "?? new.txt", "?? dir/deep.txt", " D src/b.py", "AM staged.txt"} == set(entries(ours))


async def test_diff_of_worktree_index_commit_and_range_matches_git(repo_bench: Bench) -> None:
    w = repo_bench.workspace
    (w / "a.txt").write_text("one\nTWO\nthree\n")
    (w / "src" / "b.py").write_text("print('B')\n")
    sh(w, "add", "src/b.py")

    assert without_index_lines(await repo_bench.ok("workspace_git_diff")) == without_index_lines(sh(w, "diff"))
    staged = await repo_bench.ok("workspace_git_diff", {"staged": True})
    assert without_index_lines(staged) == without_index_lines(sh(w, "diff", "--cached"))
    assert "print('B')" in staged

    one_commit = await repo_bench.ok("workspace_git_diff", {"revision": "HEAD"})
    assert without_index_lines(one_commit) == without_index_lines(sh(w, "diff", "HEAD~1", "HEAD"))
    whole = await repo_bench.ok("workspace_git_diff", {"revision": "HEAD~1..HEAD"})
    assert whole == one_commit
    only_a = await repo_bench.ok("workspace_git_diff", {"paths": ["a.txt"], "context_lines": 0})
    assert without_index_lines(only_a) == without_index_lines(sh(w, "diff", "-U0", "--", "a.txt"))


async def test_diff_of_a_symmetric_range_starts_at_the_merge_base(repo_bench: Bench) -> None:
    w = repo_bench.workspace
    sh(w, "checkout", "-q", "-b", "topic")
    commit_file(w, "topic.txt", "t\n", "feat: topic")
    sh(w, "checkout", "-q", "main")
    commit_file(w, "main.txt", "m\n", "chore: main moves on")
    ours = await repo_bench.ok("workspace_git_diff", {"revision": "main...topic"})
    assert without_index_lines(ours) == without_index_lines(sh(w, "diff", "main...topic"))
    assert "topic.txt" in ours and "main.txt" not in ours


async def test_log_and_branches_match_git(repo_bench: Bench) -> None:
    w = repo_bench.workspace
    sh(w, "branch", "feature")
    commit_file(w, "c.txt", "c\n", "docs: third")
    log = await repo_bench.ok("workspace_git_log")
    expected = sh(w, "log", "--format=%h %an: %s").splitlines()
    assert [f"{line.split()[0]} {line.split(' ', 4)[4]}" for line in log.splitlines()] == expected
    assert len((await repo_bench.ok("workspace_git_log", {"max_count": 1})).splitlines()) == 1
    touching = await repo_bench.ok("workspace_git_log", {"paths": ["src"]})
    assert [line.split()[0] for line in touching.splitlines()] == sh(w, "log", "--format=%h", "--", "src").split()

    branches = await repo_bench.ok("workspace_git_branches")
    names = [line[2:].split()[0] for line in branches.splitlines()]
    assert names == sh(w, "branch", "--format=%(refname:short)").split()
    assert [line for line in branches.splitlines() if line.startswith("*")][0].startswith("* main ")


async def test_stage_unstage_and_commit_as_git_sees_them(repo_bench: Bench) -> None:
    w = repo_bench.workspace
    (w / "a.txt").write_text("changed\n")
    (w / "new.txt").write_text("new\n")
    (w / "src" / "b.py").unlink()
    await repo_bench.ok("workspace_git_stage", {"paths": ["a.txt", "new.txt", "src/b.py"]})
    assert sh(w, "diff", "--cached", "--name-status").splitlines() == ["M\ta.txt", "A\tnew.txt", "D\tsrc/b.py"]

    await repo_bench.ok("workspace_git_unstage", {"paths": ["new.txt", "src"]})
    assert sh(w, "diff", "--cached", "--name-only").split() == ["a.txt"]
    assert sh(w, "status", "--porcelain", "-uall").splitlines() == ["M  a.txt", " D src/b.py", "?? new.txt"]

    answer = await repo_bench.ok("workspace_git_commit", {"message": "feat: change a"})
    head = sh(w, "log", "-1", "--format=%h|%an|%ae|%s").strip()
    short, author, email, subject = head.split("|")
    assert answer == f"[main {short}] feat: change a"
    assert (author, email, subject) == ("Ada Lovelace", "ada@example.com", "feat: change a")
    assert "nothing to commit" in await repo_bench.fails("workspace_git_commit", {"message": "again"})

    await repo_bench.ok("workspace_git_commit", {"message": "chore: everything tracked", "all": True})
    assert sh(w, "status", "--porcelain", "-uall").splitlines() == ["?? new.txt"]
    assert sh(w, "show", "--name-status", "--format=", "HEAD").split() == ["D", "src/b.py"]


@pytest.fixture
def no_global_git_config(tmp_path: Path) -> Iterator[None]:
    """libgit2 looks for no global config (it reads ~/.gitconfig otherwise); restored afterwards."""
    saved = pygit2.settings.search_path[ConfigLevel.GLOBAL]
    empty = tmp_path / "empty-home"
    empty.mkdir()
    pygit2.settings.search_path[ConfigLevel.GLOBAL] = str(empty)
    try:
        yield
    finally:
        pygit2.settings.search_path[ConfigLevel.GLOBAL] = saved


@pytest.mark.usefixtures("no_global_git_config")
async def test_commits_without_a_configured_user_are_signed_by_lynkr(tmp_path: Path) -> None:
    b = _bench(tmp_path)
    sh(b.workspace, "init", "-q", "-b", "main")
    (b.workspace / "f.txt").write_text("f\n")
    await b.ok("workspace_git_stage", {"all": True})
    await b.ok("workspace_git_commit", {"message": "feat: f"})
    assert sh(b.workspace, "log", "-1", "--format=%an <%ae>|%cn <%ce>").strip() == (
        "lynkr <lynkr@localhost>|lynkr <lynkr@localhost>"
    )


async def test_stash_push_list_pop_as_git_sees_them(repo_bench: Bench) -> None:
    w = repo_bench.workspace
    (w / "a.txt").write_text("work in progress\n")
    (w / "untracked.txt").write_text("u\n")
    await repo_bench.ok("workspace_git_stash", {"message": "wip", "include_untracked": True})
    assert sh(w, "status", "--porcelain", "-uall") == ""
    listed = await repo_bench.ok("workspace_git_stash", {"operation": "list"})
    assert listed.splitlines() == sh(w, "stash", "list").splitlines()
    assert "wip" in listed

    await repo_bench.ok("workspace_git_stash", {"operation": "pop"})
    assert sh(w, "stash", "list") == ""
    assert (w / "a.txt").read_text() == "work in progress\n" and (w / "untracked.txt").exists()
    sh(w, "stash", "-q", "-u")
    assert "no local changes to stash" in await repo_bench.fails("workspace_git_stash", {"operation": "push"})
    assert "there is no stash@{3}" in await repo_bench.fails("workspace_git_stash", {"operation": "drop", "index": 3})


async def test_checkout_switches_creates_and_refuses_to_overwrite(repo_bench: Bench) -> None:
    w = repo_bench.workspace
    await repo_bench.ok("workspace_git_checkout", {"branch": "topic", "create": True})
    assert sh(w, "rev-parse", "--abbrev-ref", "HEAD").strip() == "topic"
    commit_file(w, "a.txt", "topic version\n", "feat: topic")
    await repo_bench.ok("workspace_git_checkout", {"branch": "main"})
    assert sh(w, "rev-parse", "--abbrev-ref", "HEAD").strip() == "main"
    assert (w / "a.txt").read_text() == "one\ntwo\nthree\n"

    (w / "a.txt").write_text("local edit\n")
    refused = await repo_bench.fails("workspace_git_checkout", {"branch": "topic"})
    assert "stash" in refused
    assert (w / "a.txt").read_text() == "local edit\n"
    assert sh(w, "rev-parse", "--abbrev-ref", "HEAD").strip() == "main"
    assert "no branch nowhere" in await repo_bench.fails("workspace_git_checkout", {"branch": "nowhere"})


# --- remotes ------------------------------------------------------------------------------------------------


def bare_remote(tmp_path: Path, name: str = "remote.git") -> Path:
    remote = tmp_path / name
    sh(tmp_path, "init", "-q", "--bare", "-b", "main", str(remote))
    return remote


async def test_push_and_pull_with_a_local_bare_remote(repo_bench: Bench, tmp_path: Path) -> None:
    w = repo_bench.workspace
    remote = bare_remote(tmp_path)
    sh(w, "remote", "add", "origin", str(remote))
    pushed = await repo_bench.ok("workspace_git_push", {"set_upstream": True})
    assert "ran your `git`" not in pushed
    assert sh(remote, "log", "--format=%s", "main").splitlines() == ["fix(core): second", "feat: first"]
    assert sh(w, "rev-parse", "--abbrev-ref", "main@{upstream}").strip() == "origin/main"

    # Someone else pushes; our pull fast-forwards.
    other = tmp_path / "other"
    sh(tmp_path, "clone", "-q", str(remote), str(other))
    sh(other, "config", "user.name", "Bob")
    sh(other, "config", "user.email", "bob@example.com")
    commit_file(other, "from_bob.txt", "bob\n", "feat: bob's work")
    sh(other, "push", "-q", "origin", "main")
    sh(w, "fetch", "-q")
    header = (await repo_bench.ok("workspace_git_status")).splitlines()[0]
    assert header == sh(w, "status", "--porcelain", "-b").splitlines()[0] == "## main...origin/main [behind 1]"
    pulled = await repo_bench.ok("workspace_git_pull")
    assert "Fast-forwarded" in pulled
    assert (w / "from_bob.txt").read_text() == "bob\n"
    assert sh(w, "status", "--porcelain") == ""

    # Both sides move: the pull makes a merge commit with both parents.
    commit_file(other, "bob2.txt", "b2\n", "feat: more from bob")
    sh(other, "push", "-q", "origin", "main")
    commit_file(w, "ours.txt", "o\n", "feat: ours")
    assert "pull first" in await repo_bench.fails("workspace_git_push")
    merged = await repo_bench.ok("workspace_git_pull")
    assert merged.startswith("Merged origin/main into main")
    assert len(sh(w, "log", "-1", "--format=%p").split()) == 2
    await repo_bench.ok("workspace_git_push")
    assert sh(remote, "rev-parse", "main") == sh(w, "rev-parse", "HEAD")
    assert "Already up to date" in await repo_bench.ok("workspace_git_pull")

    # A branch that exists only on the remote is checked out as a new branch tracking it.
    sh(other, "push", "-q", "origin", "main:feature")
    await repo_bench.ok("workspace_git_pull")
    remote_branches = await repo_bench.ok("workspace_git_branches", {"remote": True})
    assert [line.split()[0] for line in remote_branches.splitlines() if line.startswith("  remotes/")] == [
        f"remotes/{name}" for name in sh(w, "branch", "-r", "--format=%(refname:short)").split()
    ] == ["remotes/origin/feature", "remotes/origin/main"]
    assert "tracking origin/feature" in await repo_bench.ok("workspace_git_checkout", {"branch": "feature"})
    assert sh(w, "rev-parse", "--abbrev-ref", "feature@{upstream}").strip() == "origin/feature"


async def test_push_of_a_diverged_branch_is_refused_with_what_to_do(repo_bench: Bench, tmp_path: Path) -> None:
    w = repo_bench.workspace
    remote = bare_remote(tmp_path)
    sh(w, "remote", "add", "origin", str(remote))
    await repo_bench.ok("workspace_git_push", {"set_upstream": True})
    other = tmp_path / "other"
    sh(tmp_path, "clone", "-q", str(remote), str(other))
    sh(other, "config", "user.name", "Bob")
    sh(other, "config", "user.email", "bob@example.com")
    commit_file(other, "x.txt", "x\n", "feat: x")
    sh(other, "push", "-q", "origin", "main")
    commit_file(w, "y.txt", "y\n", "feat: y")
    refused = await repo_bench.fails("workspace_git_push")
    assert "pull first" in refused
    assert sh(remote, "log", "-1", "--format=%s", "main").strip() == "feat: x"


@pytest.mark.parametrize("autostash", [False, True])
async def test_pull_over_local_changes_to_the_same_file_needs_autostash(tmp_path: Path, autostash: bool) -> None:
    b = _bench(tmp_path, {"POLICY_GIT_AUTOSTASH": str(autostash).lower()})
    w = init(b.workspace)
    commit_file(w, "a.txt", "one\ntwo\nthree\n", "feat: a")
    remote = bare_remote(tmp_path)
    sh(w, "remote", "add", "origin", str(remote))
    await b.ok("workspace_git_push", {"set_upstream": True})
    other = tmp_path / "other"
    sh(tmp_path, "clone", "-q", str(remote), str(other))
    sh(other, "config", "user.name", "Bob")
    sh(other, "config", "user.email", "bob@example.com")
    commit_file(other, "a.txt", "ONE\ntwo\nthree\n", "fix: one")
    sh(other, "push", "-q", "origin", "main")
    (w / "a.txt").write_text("one\ntwo\nTHREE\n")

    if not autostash:
        assert "stash" in await b.fails("workspace_git_pull")
        assert (w / "a.txt").read_text() == "one\ntwo\nTHREE\n"
        return
    pulled = await b.ok("workspace_git_pull")
    assert "stashed around the pull and are back in place" in pulled
    assert (w / "a.txt").read_text() == "ONE\ntwo\nTHREE\n"
    assert sh(w, "stash", "list") == ""
    assert sh(w, "log", "-1", "--format=%s").strip() == "fix: one"


async def test_pull_with_conflicts_leaves_them_for_resolution_like_git(repo_bench: Bench, tmp_path: Path) -> None:
    w = repo_bench.workspace
    remote = bare_remote(tmp_path)
    sh(w, "remote", "add", "origin", str(remote))
    await repo_bench.ok("workspace_git_push", {"set_upstream": True})
    other = tmp_path / "other"
    sh(tmp_path, "clone", "-q", str(remote), str(other))
    sh(other, "config", "user.name", "Bob")
    sh(other, "config", "user.email", "bob@example.com")
    commit_file(other, "a.txt", "theirs\n", "feat: theirs")
    sh(other, "push", "-q", "origin", "main")
    commit_file(w, "a.txt", "ours\n", "feat: ours")

    refused = await repo_bench.fails("workspace_git_pull")
    assert "conflicts in a.txt" in refused
    status = await repo_bench.ok("workspace_git_status")
    assert entries(status) == sh(w, "status", "--porcelain", "-uall").splitlines() == ["UU a.txt"]
    assert "unresolved conflicts: a.txt" in status

    # Conflicts block commit and checkout with a way forward, until resolved.
    assert "resolve them" in await repo_bench.fails("workspace_git_commit", {"message": "merge"})
    assert "unresolved conflicts" in await repo_bench.fails("workspace_git_checkout", {"branch": "x", "create": True})
    (w / "a.txt").write_text("both\n")
    await repo_bench.ok("workspace_git_stage", {"paths": ["a.txt"]})
    await repo_bench.ok("workspace_git_commit", {"message": "merge: resolve a.txt"})
    assert len(sh(w, "log", "-1", "--format=%p").split()) == 2
    assert sh(w, "status", "--porcelain") == ""


# --- the fallback to the user's git -------------------------------------------------------------------------


def test_passwords_in_remote_urls_never_reach_the_model() -> None:
    text = "To https://alice:ghp-s3cret@example.com/repo.git\nfrom http://bob@host/x and ssh://git@host:22/y"
    assert without_passwords(text) == (
        "To https://alice:***@example.com/repo.git\nfrom http://bob@host/x and ssh://git@host:22/y"
    )


def test_urls_libgit2_cannot_serve_go_to_git(tmp_path: Path) -> None:
    assert why_libgit2_cannot(str(tmp_path)) is None
    assert why_libgit2_cannot("file:///srv/repo.git") is None
    assert why_libgit2_cannot("https://example.com/repo.git") is None
    for ssh in ("git@github.com:me/repo.git", "ssh://git@example.com/repo.git", "host:path/repo.git"):
        assert "SSH agent" in (why_libgit2_cannot(ssh) or ""), ssh
    assert "git-remote-ext" in (why_libgit2_cannot("ext::ssh -p 2222 host %S repo") or "")


async def test_push_and_pull_fall_back_to_git_when_the_server_wants_a_credential_helper(
    repo_bench: Bench, tmp_path: Path
) -> None:
    w = repo_bench.workspace
    served = tmp_path / "served"
    served.mkdir()
    remote = bare_remote(served, "project.git")
    helper = f"!f() {{ echo username={git_http_server.USER}; echo password={git_http_server.PASSWORD}; }}; f"
    sh(w, "config", "credential.helper", helper)
    with git_http_server.serving(served) as (base, requests):
        sh(w, "remote", "add", "origin", f"{base}/project.git")
        pushed = await repo_bench.ok("workspace_git_push", {"set_upstream": True})
        assert "ran your `git` command instead of libgit2" in pushed
        assert "credential helper" in pushed
        assert git_http_server.PASSWORD not in pushed
        assert sh(remote, "log", "--format=%s", "main").splitlines() == ["fix(core): second", "feat: first"]
        # libgit2 tried first, anonymously, and stopped at the 401; git then came with the helper's login.
        assert requests[0].endswith("anonymous") and any(line.endswith("authorized") for line in requests)

        other = tmp_path / "other"
        sh(tmp_path, "clone", "-q", str(remote), str(other))
        sh(other, "config", "user.name", "Bob")
        sh(other, "config", "user.email", "bob@example.com")
        commit_file(other, "bob.txt", "bob\n", "feat: bob")
        sh(other, "push", "-q", "origin", "main")
        pulled = await repo_bench.ok("workspace_git_pull")
        assert "ran your `git` command instead of libgit2" in pulled
        assert (w / "bob.txt").read_text() == "bob\n"


FAKE_SSH = """#!/bin/sh
# Stands in for ssh, as a user's core.sshCommand might: runs the remote command (the last argument) here.
for last; do :; done
exec sh -c "$last"
"""


@pytest.mark.parametrize("transport", ["ssh", "remote-helper"])
async def test_ssh_and_remote_helper_urls_go_straight_to_the_users_git(
    repo_bench: Bench, tmp_path: Path, transport: str
) -> None:
    w = repo_bench.workspace
    remote = bare_remote(tmp_path)
    if transport == "ssh":
        fake_ssh = tmp_path / "fake-ssh"
        fake_ssh.write_text(FAKE_SSH)
        fake_ssh.chmod(0o755)
        sh(w, "config", "core.sshCommand", str(fake_ssh))
        url, reason = f"ssh://git.example.invalid{remote}", "SSH agent"
    else:
        sh(w, "config", "protocol.ext.allow", "always")
        url, reason = f"ext::git %s {remote}", "remote helper git-remote-ext"
    sh(w, "remote", "add", "origin", url)

    pushed = await repo_bench.ok("workspace_git_push", {"set_upstream": True})
    assert "ran your `git` command instead of libgit2" in pushed and reason in pushed
    assert sh(remote, "log", "--format=%s", "main").splitlines() == ["fix(core): second", "feat: first"]

    other = tmp_path / "other"
    sh(tmp_path, "clone", "-q", str(remote), str(other))
    sh(other, "config", "user.name", "Bob")
    sh(other, "config", "user.email", "bob@example.com")
    commit_file(other, "bob.txt", "bob\n", "feat: bob")
    sh(other, "push", "-q", "origin", "main")
    pulled = await repo_bench.ok("workspace_git_pull")
    assert reason in pulled
    assert (w / "bob.txt").read_text() == "bob\n"


async def test_the_fallback_git_gets_no_secrets(repo_bench: Bench, tmp_path: Path) -> None:
    w = repo_bench.workspace
    served = tmp_path / "served"
    served.mkdir()
    bare_remote(served, "project.git")
    seen = tmp_path / "helper-environment.txt"
    helper = (
        f"!f() {{ env > {seen}; echo username={git_http_server.USER}; "
        f"echo password={git_http_server.PASSWORD}; }}; f"
    )
    sh(w, "config", "credential.helper", helper)
    repo_bench.environ = {**repo_bench.environ, "GITHUB_TOKEN": "ghp-leak", "OPENAI_API_KEY": "sk-leak",
                          "ANTHROPIC_BASE_URL": "http://leak", "LYNKR_PORT": "1"}
    with git_http_server.serving(served) as (base, _):
        sh(w, "remote", "add", "origin", f"{base}/project.git")
        await repo_bench.ok("workspace_git_push")
    environment = seen.read_text()
    assert "PATH=" in environment
    assert "leak" not in environment and "LYNKR_" not in environment


async def test_git_fallback_failure_is_a_clear_error_without_prompting(repo_bench: Bench, tmp_path: Path) -> None:
    w = repo_bench.workspace
    served = tmp_path / "served"
    served.mkdir()
    bare_remote(served, "project.git")
    with git_http_server.serving(served) as (base, _):
        sh(w, "remote", "add", "origin", f"{base}/project.git")
        failed = await repo_bench.fails("workspace_git_push")
    assert "git push failed" in failed
    assert "terminal prompts disabled" in failed or "Authentication failed" in failed


# --- policy -------------------------------------------------------------------------------------------------


async def _judge(b: Bench, action: Action) -> list[str]:
    reasons = []
    for rule in git.rules(b.config):
        refusal = await rule.judge(action, b.context())
        if refusal is not None:
            reasons.append(refusal.reason)
    return reasons


async def test_push_is_refused_by_default_also_when_hidden_in_a_shell_command(repo_bench: Bench) -> None:
    push = git.tools(repo_bench.config)[5]
    assert push.spec.name == "workspace_git_push"
    (action,) = push.actions({})
    assert "POLICY_GIT_ALLOW_PUSH is off" in " ".join(await _judge(repo_bench, action))
    hidden = Action(kind="git.push", command="bash -c 'cd . && git push origin main'")
    assert "POLICY_GIT_ALLOW_PUSH is off" in " ".join(await _judge(repo_bench, hidden))
    assert await _judge(repo_bench, Action(kind="git.read")) == []
    (commit,) = git.tools(repo_bench.config)[4].actions({"message": "feat: x"})
    assert await _judge(repo_bench, commit) == []


async def test_push_pull_and_commit_follow_their_switches(tmp_path: Path) -> None:
    b = _bench(tmp_path, {"POLICY_GIT_ALLOW_PUSH": "true", "POLICY_GIT_ALLOW_PULL": "false",
                          "POLICY_GIT_ALLOW_COMMIT": "false"})
    assert await _judge(b, Action(kind="git.push")) == []
    assert "POLICY_GIT_ALLOW_PULL" in " ".join(await _judge(b, Action(kind="git.pull")))
    assert "POLICY_GIT_ALLOW_COMMIT" in " ".join(await _judge(b, Action(kind="git.commit", detail={"message": "x"})))


async def test_commit_messages_must_match_the_pattern(tmp_path: Path) -> None:
    b = _bench(tmp_path, {"POLICY_GIT_COMMIT_REGEX": r"^(feat|fix)(\(\w+\))?: "})
    commit_tool = next(tool for tool in git.tools(b.config) if tool.spec.name == "workspace_git_commit")
    (bad,) = commit_tool.actions({"message": "stuff"})
    assert "POLICY_GIT_COMMIT_REGEX" in " ".join(await _judge(b, bad))
    (good,) = commit_tool.actions({"message": "fix(core): a real fix"})
    assert await _judge(b, good) == []


async def test_commit_with_failing_tests_is_refused_while_tests_are_required(tmp_path: Path) -> None:
    b = _bench(tmp_path, {
        "POLICY_GIT_REQUIRE_TESTS": "true",
        "POLICY_GIT_TEST_COMMAND": f"{sys.executable} -m pytest -q -p no:cacheprovider",
    })
    w = init(b.workspace)
    (w / "test_math.py").write_text("def test_adds():\n    assert 1 + 1 == 3\n")
    commit_action = Action(kind="git.commit", detail={"message": "feat: math"})
    refused = " ".join(await _judge(b, commit_action))
    assert "tests must pass before a git commit" in refused
    assert "1 failed" in refused and "test_math.py::test_adds" in refused
    # Pushes are off by default: refused for that alone, without running the tests again.
    assert await _judge(b, Action(kind="git.push")) == [
        "git push is not allowed here (POLICY_GIT_ALLOW_PUSH is off); leave the push to the user, or ask them to "
        "set POLICY_GIT_ALLOW_PUSH=true"
    ]

    pushes_allowed = _bench(tmp_path, {
        "POLICY_GIT_REQUIRE_TESTS": "true",
        "POLICY_GIT_TEST_COMMAND": f"{sys.executable} -m pytest -q -p no:cacheprovider",
        "POLICY_GIT_ALLOW_PUSH": "true",
    })
    assert "tests must pass before a git push" in " ".join(await _judge(pushes_allowed, Action(kind="git.push")))

    (w / "test_math.py").write_text("def test_adds():\n    assert 1 + 1 == 2\n")
    assert await _judge(b, commit_action) == []
    assert await _judge(pushes_allowed, Action(kind="git.push")) == []


async def test_required_tests_with_no_test_command_refuse_with_the_setting_to_use(tmp_path: Path) -> None:
    b = _bench(tmp_path, {"POLICY_GIT_REQUIRE_TESTS": "true"})
    refusals = await _judge(b, Action(kind="git.commit", detail={"message": "x"}))
    assert "set POLICY_GIT_TEST_COMMAND" in " ".join(refusals)


# --- bad states ---------------------------------------------------------------------------------------------


async def test_not_a_repository_gives_a_clear_error(tmp_path: Path) -> None:
    b = _bench(tmp_path)
    for name in ("workspace_git_status", "workspace_git_log", "workspace_git_diff", "workspace_git_branches"):
        assert "is not inside a git repository; run `git init`" in await b.fails(name)


async def test_empty_repository_says_there_are_no_commits(tmp_path: Path) -> None:
    b = _bench(tmp_path)
    w = init(b.workspace)
    assert (await b.ok("workspace_git_status")).splitlines()[0] == "## No commits yet on main"
    assert "no commits yet on main" in await b.fails("workspace_git_log")
    assert "no commits yet" in await b.fails("workspace_git_stash")
    assert "names no commit" in await b.fails("workspace_git_diff", {"revision": "HEAD"})
    assert "no commits yet" in await b.fails("workspace_git_checkout", {"branch": "x", "create": True})
    assert "nothing to commit" in await b.fails("workspace_git_commit", {"message": "empty"})
    (w / "first.txt").write_text("1\n")
    await b.ok("workspace_git_stage", {"all": True})
    assert "+1" in await b.ok("workspace_git_diff", {"staged": True})
    assert (await b.ok("workspace_git_commit", {"message": "feat: first"})).startswith("[main ")
    assert sh(w, "log", "--format=%s").strip() == "feat: first"


async def test_detached_head_is_reported_and_blocks_commit_and_push(repo_bench: Bench, tmp_path: Path) -> None:
    w = repo_bench.workspace
    sh(w, "remote", "add", "origin", str(bare_remote(tmp_path)))
    detached = await repo_bench.ok("workspace_git_checkout", {"detach": "HEAD~1"})
    short = sh(w, "rev-parse", "--short", "HEAD").strip()
    assert detached == f"HEAD is now detached at {short}"
    assert sh(w, "rev-parse", "--abbrev-ref", "HEAD").strip() == "HEAD"
    assert (await repo_bench.ok("workspace_git_status")).splitlines()[0] == f"## HEAD (detached at {short})"
    assert (await repo_bench.ok("workspace_git_branches")).splitlines()[0] == f"* (HEAD detached at {short})"
    (w / "a.txt").write_text("x\n")
    assert "HEAD is detached" in await repo_bench.fails("workspace_git_commit", {"message": "x", "all": True})
    assert "HEAD is detached" in await repo_bench.fails("workspace_git_push")
    assert "HEAD is detached" in await repo_bench.fails("workspace_git_pull")


# --- release notes, diff summary, changelog -----------------------------------------------------------------


async def test_release_notes_group_commits_by_type_since_the_newest_tag(repo_bench: Bench) -> None:
    w = repo_bench.workspace
    sh(w, "tag", "v1.0.0")
    commit_file(w, "c.txt", "c\n", "feat(api)!: new endpoint shape")
    commit_file(w, "d.txt", "d\n", "fix: off by one\n\nBREAKING CHANGE: counts start at zero")
    commit_file(w, "e.txt", "e\n", "tidy up")
    notes = await repo_bench.ok("workspace_git_release_notes")
    assert notes.splitlines()[0] == "## Release notes for v1.0.0..HEAD"
    assert "3 commits (1 feat, 1 fix, 1 other), 2 breaking" in notes
    assert "3 files changed, 3 insertions(+), 0 deletions(-)" in notes
    sections = [line for line in notes.splitlines() if line.startswith("### ")]
    assert sections == ["### Breaking changes", "### Features", "### Bug fixes", "### Other changes"]
    assert "- **api:** new endpoint shape" in notes
    assert "- counts start at zero" in notes
    assert "first" not in notes  # before the tag


async def test_diff_summary_counts_match_git_numstat(repo_bench: Bench) -> None:
    w = repo_bench.workspace
    commit_file(w, "a.txt", "one\n2\nthree\nfour\n", "feat: edit a")
    summary = await repo_bench.ok("workspace_git_diff_summary", {"range": "HEAD~2..HEAD"})
    numstat = sh(w, "diff", "--numstat", "HEAD~2..HEAD").splitlines()
    for line in numstat:
        added, deleted, path = line.split("\t")
        assert any(row.split("|")[0].strip() == path and row.rstrip().endswith(f"+{added} -{deleted}")
                   for row in summary.splitlines()), (line, summary)
    total = sh(w, "diff", "--shortstat", "HEAD~2..HEAD").strip()
    assert total in summary


async def test_summaries_ask_the_model_when_a_provider_is_configured(repo_bench: Bench) -> None:
    prompts: list[str] = []

    async def summarize(prompt: str) -> str:
        prompts.append(prompt)
        return "Adds a first file and fixes the core."

    repo_bench.summarize = summarize
    notes = await repo_bench.ok("workspace_git_release_notes")
    assert notes.startswith(
        "Summary (written by the model):\nAdds a first file and fixes the core.\n\n## Release notes"
    )
    assert len(prompts) == 1 and "fix(core): second" not in prompts[0] and "second" in prompts[0]
    assert "+print('b')" in prompts[0]


async def test_changelog_has_a_section_per_tag_newest_first(repo_bench: Bench) -> None:
    w = repo_bench.workspace
    sh(w, "tag", "v0.1.0", "HEAD~1")
    sh(w, "tag", "-a", "v0.2.0", "-m", "release 0.2.0")
    commit_file(w, "n.txt", "n\n", "perf: faster")
    changelog = await repo_bench.ok("workspace_git_changelog")
    headings = [line for line in changelog.splitlines() if line.startswith("## ")]
    assert [heading.split(" (")[0] for heading in headings] == ["## Unreleased", "## v0.2.0", "## v0.1.0"]
    unreleased, v2, v1 = changelog.split("\n## ")[1:]
    assert "### Performance\n- faster" in unreleased
    assert "### Bug fixes\n- **core:** second" in v2
    assert "### Features\n- first" in v1
    assert (await repo_bench.ok("workspace_git_changelog", {"releases": 1})).count("## v") == 1


def test_the_state_has_no_git_part() -> None:
    assert ToolState.empty(git.PROJECTIONS).parts == {}
