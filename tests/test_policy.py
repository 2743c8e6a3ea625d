"""The policy bypass suite: every way around the rules we could think of, each refused, nothing written, nothing leaked.

Calls go through the real runner and the real tools in a real temporary workspace, next to a folder outside it
that holds a secret; after each case both trees are compared with a snapshot taken before.
"""

from __future__ import annotations

import os
import shlex
import shutil
from collections.abc import Mapping
from pathlib import Path

import attrs
import pygit2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lynkr.tools.base import Action, Refusal, ToolContext
from lynkr.tools.cmdline import analyse, shell_actions
from lynkr.tools.events import ToolRan, ToolRefused
from lynkr.tools.policy import CommandPolicy, FilePolicy, file_policy
from lynkr.tools.runner import Outcome
from tests.tool_harness import Harness, harness

OUTSIDE_SECRET = "outside-secret-7f3a9c"
ENV_SECRET = "envfile-secret-4b8d2e"


@attrs.frozen
class Sandbox:
    tools: Harness
    outside: Path

    def snapshot(self) -> dict[str, bytes | str]:
        """Every path under the test's folder, with its bytes (or its link target)."""
        root = self.outside.parent
        found: dict[str, bytes | str] = {}
        for folder, dirnames, filenames in os.walk(root, followlinks=False):
            for name in dirnames + filenames:
                path = Path(folder) / name
                rel = str(path.relative_to(root))
                if "data" in path.relative_to(root).parts[:1]:
                    continue
                if path.is_symlink():
                    found[rel] = "-> " + os.readlink(path)
                elif path.is_file():
                    found[rel] = path.read_bytes()
                else:
                    found[rel] = "dir"
        return found


def build_sandbox(tmp_path: Path, env: Mapping[str, str] | None = None, **kwargs: Mapping[str, str]) -> Sandbox:
    tools = harness(tmp_path, env, **kwargs)
    ws = tools.workspace
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text(OUTSIDE_SECRET + "\n")
    (ws / ".env").write_text(f"API_TOKEN={ENV_SECRET}\n")
    (ws / ".env.local").write_text(f"OTHER={ENV_SECRET}\n")
    (ws / "sub").mkdir()
    (ws / "sub" / "a.txt").write_text("inside\n")
    (ws / "link_out").symlink_to(outside)
    (ws / "file_link").symlink_to(outside / "keep.txt")
    (ws / "env_link").symlink_to(ws / ".env")
    (ws / "link_in").symlink_to(ws / "sub")
    (ws / "loop").symlink_to(ws / "loop")
    return Sandbox(tools=tools, outside=outside)


@pytest.fixture
def sandbox(tmp_path: Path) -> Sandbox:
    return build_sandbox(tmp_path)


def assert_refused(outcome: Outcome, case: object) -> None:
    assert outcome.result.is_error, f"{case} was not refused: {outcome.result.content!r}"
    assert isinstance(outcome.events[0], ToolRefused), f"{case}: {outcome.result.content!r}"
    assert str(outcome.result.content).startswith("lynkr's policy refused this"), case


def assert_nothing_leaked(outcome: Outcome, case: object) -> None:
    content = str(outcome.result.content)
    assert OUTSIDE_SECRET not in content and ENV_SECRET not in content, f"{case} leaked: {content!r}"


# --- rm -rf ------------------------------------------------------------------------------------------------------

RM_VARIANTS = [
    "rm -rf /",
    "rm -rf ~",
    "rm -rf ~/",
    "rm -rf .",
    "rm -rf ./",
    "rm -rf ..",
    "rm -rf *",
    "rm -rf ./*",
    "rm -rf .*",
    "rm -rf ../outside",
    "rm -rf ../outside/keep.txt",
    "rm -r -f ../outside",
    "rm --recursive --force ../outside",
    "rm -fr -- ../outside",
    "/bin/rm -rf ../outside",
    "/usr/bin/env rm -rf ../outside",
    "\\rm -rf ../outside",
    "'rm' -rf ../outside",
    "r''m -rf ../outside",
    "\"rm\" -rf ../outside",
    "rm -rf $HOME",
    "rm -rf ${HOME}",
    'rm -rf "$(pwd)/.."',
    "rm -rf `pwd`",
    "rm -rf {.,..}",
    "rm -rf link_out/",
    "rm -rf link_out/keep.txt",
    "rm -f file_link/../keep.txt",
    "rmdir ../outside",
    "unlink ../outside/keep.txt",
    "shred -u ../outside/keep.txt",
    "echo ok; rm -rf ../outside",
    "true && rm -rf ../outside",
    "false || rm -rf ../outside",
    "echo ok | rm -rf ../outside",
    "echo ok & rm -rf ../outside",
    "echo ok\nrm -rf ../outside",
    "echo $(rm -rf ../outside)",
    "echo `rm -rf ../outside`",
    "x=$(rm -rf ../outside)",
    "(rm -rf ../outside)",
    "{ rm -rf ../outside; }",
    "if true; then rm -rf ../outside; fi",
    "for f in a; do rm -rf ../outside; done",
    "cat <(rm -rf ../outside)",
    "cat <<EOF\n$(rm -rf ../outside)\nEOF",
    "cd .. && rm -rf outside",
    "cd ..; rm -rf workspace",
    "cd /; rm -rf tmp",
    "cd; rm -rf *",
    "cd $HOME && rm -rf x",
    "bash -c 'rm -rf ../outside'",
    'sh -c "rm -rf ../outside"',
    "bash -lc 'rm -rf ../outside'",
    "bash -c \"bash -c 'rm -rf ../outside'\"",
    "eval rm -rf ../outside",
    "eval 'rm -rf ../outside'",
    "echo 'rm -rf ../outside' | sh",
    "echo 'rm -rf ../outside' | bash -s",
    "env X=1 rm -rf ../outside",
    "env -S 'rm -rf ../outside'",
    "sudo rm -rf ../outside",
    "sudo -u root rm -rf ../outside",
    "nice -n 5 rm -rf ../outside",
    "nohup rm -rf ../outside",
    "timeout 5 rm -rf ../outside",
    "command rm -rf ../outside",
    "exec rm -rf ../outside",
    "time rm -rf ../outside",
    "xargs rm -rf <<< ../outside",
    "echo ../outside | xargs rm -rf",
    "find .. -delete",
    "find ../outside -exec rm -rf {} +",
    "find / -name keep.txt -delete",
    "$RM -rf ../outside",
    "RM=rm; $RM -rf ../outside",
    "$(echo rm) -rf ../outside",
    "rm -rf " + "/tmp/../" + "outside",
    "trap 'rm -rf ../outside' EXIT",
    "su -c 'rm -rf ../outside' root",
    "runuser -u nobody -- sh -c 'rm -rf ../outside'",
    "runuser -u nobody -- rm -rf ../outside",
    "flock /tmp/lock -c 'rm -rf ../outside'",
    "bash <(echo 'rm -rf ../outside')",
    "source <(echo 'rm -rf ../outside')",
    ". <(echo 'rm -rf ../outside')",
]


@pytest.mark.parametrize("tool", ["Bash", "shell"])
async def test_rm_rf_variants_are_refused_and_nothing_is_removed(sandbox: Sandbox, tool: str) -> None:
    before = sandbox.snapshot()
    for line in RM_VARIANTS:
        outcome = await sandbox.tools.call(tool, command=line)
        assert_refused(outcome, line)
    assert sandbox.snapshot() == before


async def test_rm_inside_the_workspace_is_allowed(sandbox: Sandbox) -> None:
    ws = sandbox.tools.workspace
    (ws / "build" / "deep").mkdir(parents=True)
    (ws / "build" / "deep" / "x.o").write_text("")
    outcome = await sandbox.tools.call("Bash", command="rm -rf build/* && ls")
    assert not outcome.result.is_error, outcome.result.content
    assert (ws / "build").is_dir() and not (ws / "build" / "deep").exists()


# --- git push ----------------------------------------------------------------------------------------------------

PUSH_DISGUISES = [
    "git push",
    "git push origin main",
    "git -C . push",
    "git -c push.default=current push",
    "git --no-pager push --force",
    "/usr/bin/git push",
    "\\git push",
    "'git' push",
    "echo ok && git push",
    "echo ok; git push",
    "false || git push",
    "echo ok | git push",
    "git status\ngit push",
    "echo $(git push)",
    "echo `git push`",
    "(git push)",
    "{ git push; }",
    "if true; then git push; fi",
    "bash -c 'git push'",
    "sh -c \"git push origin HEAD\"",
    "bash -c \"sh -c 'git push'\"",
    "eval git push",
    "eval 'git push'",
    "env GIT_TRACE=1 git push",
    "sudo git push",
    "timeout 60 git push",
    "nohup git push &",
    "nice -n 10 git push",
    "xargs git push <<< origin",
    "find . -maxdepth 0 -exec git push \\;",
    "watch -n 60 git push",
    "cat <<EOF\n$(git push)\nEOF",
    "diff <(git push) /dev/null",
    "git -c alias.p=push p",
    "git -c alias.sync='!git push' sync",
    "git config alias.ship push",
    "git config --local alias.ship '!git push origin'",
    "git subtree push --prefix=x origin main",
    "git lfs push origin",
    "git send-pack ../remote.git main",
]


def test_every_push_disguise_yields_a_git_push_action() -> None:
    for line in PUSH_DISGUISES:
        kinds = [action.kind for action in shell_actions(line)]
        assert kinds[0] == "shell" and "git.push" in kinds, line
    for line in ("git pull --rebase", "bash -c 'git pull'"):
        assert "git.pull" in [action.kind for action in shell_actions(line)]
    [commit] = [action for action in shell_actions("x && git commit -m 'feat: add'") if action.kind == "git.commit"]
    assert commit.detail["message"] == "feat: add"
    assert [action.kind for action in shell_actions("git status; echo git push")] == ["shell"]


DISGUISES = [
    lambda line: f"sudo {line}",
    lambda line: f"env A=1 {line}",
    lambda line: f"timeout 5 {line}",
    lambda line: f"nice -n 3 {line}",
    lambda line: f"nohup {line}",
    lambda line: f"command {line}",
    lambda line: f"bash -c {shlex.quote(line)}",
    lambda line: f"sh -c {shlex.quote(line)}",
    lambda line: f"eval {shlex.quote(line)}",
    lambda line: f"echo $( {line} )",  # the space keeps "$( (" from reading as arithmetic "$((", as in bash
    lambda line: f"( {line} )",
    lambda line: f"{{ {line}; }}",
    lambda line: f"true && {line}",
    lambda line: f"false || {line}",
    lambda line: f"echo x | {line}",
    lambda line: f"if true; then {line}; fi",
    lambda line: f"while false; do :; done; {line}",
    lambda line: f"trap {shlex.quote(line)} EXIT",
]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(0, len(DISGUISES) - 1), max_size=5))
def test_git_push_is_found_under_any_stack_of_disguises(stack: list[int]) -> None:
    line = "git push origin main"
    for index in stack:
        line = DISGUISES[index](line)
    found = "git.push" in [action.kind for action in shell_actions(line)]
    # Either the push is found, or the line is refused whole as one lynkr cannot judge (bash would not parse it).
    assert found or analyse(line).problems, line


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(stack=st.lists(st.integers(0, len(DISGUISES) - 1), max_size=5))
def test_rm_outside_is_refused_under_any_stack_of_disguises(
    property_workspace: tuple[Path, Path, FilePolicy], stack: list[int]
) -> None:
    workspace, _, policy = property_workspace
    line = "rm -rf ../outside"
    for index in stack:
        line = DISGUISES[index](line)
    rules = CommandPolicy(files=policy)
    assert rules.problem(line, workspace) is not None, line


@attrs.frozen
class NoPushes:
    """Stands in for the git helper's POLICY_GIT_ALLOW_PUSH rule: refuses every git.push action."""

    name: str = "git_push"

    async def judge(self, action: Action, context: ToolContext) -> Refusal | None:
        if action.kind == "git.push":
            return Refusal(rule=self.name, reason="pushes are disallowed (POLICY_GIT_ALLOW_PUSH is false)")
        return None


def repo_with_remote(workspace: Path, tmp_path: Path) -> Path:
    remote = tmp_path / "remote.git"
    pygit2.init_repository(str(remote), bare=True)
    repo = pygit2.init_repository(str(workspace))
    (workspace / "file.txt").write_text("content\n")
    repo.index.add("file.txt")
    repo.index.write()
    signature = pygit2.Signature("Test", "test@example.com")
    repo.create_commit("HEAD", signature, signature, "first", repo.index.write_tree(), [])
    repo.remotes.create("origin", str(remote))
    return remote


@pytest.mark.skipif(shutil.which("git") is None, reason="the git command is not installed")
async def test_git_push_is_refused_directly_and_inside_bash_c_and_nothing_is_pushed(sandbox: Sandbox, tmp_path: Path) -> None:
    tools = sandbox.tools
    remote = repo_with_remote(tools.workspace, tmp_path)
    guarded = attrs.evolve(tools, toolbox=attrs.evolve(tools.toolbox, rules=(NoPushes(), *tools.toolbox.rules)))
    for line in ("git push origin HEAD:refs/heads/main", "bash -c 'git push origin HEAD:refs/heads/main'"):
        outcome = await guarded.call("Bash", command=line)
        assert_refused(outcome, line)
        assert "POLICY_GIT_ALLOW_PUSH" in str(outcome.result.content)
    assert list(pygit2.Repository(str(remote)).references) == []
    # The same command without the rule does push: the refusal above is what stopped it.
    allowed = await tools.call("Bash", command="git push -q origin HEAD:refs/heads/main")
    assert not allowed.result.is_error, allowed.result.content
    assert "refs/heads/main" in list(pygit2.Repository(str(remote)).references)


# --- .env, escapes, symlinks ------------------------------------------------------------------------------------

SECRET_READS: list[tuple[str, dict[str, object]]] = [
    ("Read", {"file_path": ".env"}),
    ("Read", {"file_path": ".env.local"}),
    ("Read", {"file_path": "sub/../.env"}),
    ("Read", {"file_path": "env_link"}),
    ("fs_read", {"path": ".env"}),
    ("Bash", {"command": "cat .env"}),
    ("Bash", {"command": "cat < .env"}),
    ("Bash", {"command": "head -c 100 ./.env"}),
    ("Bash", {"command": "cat .en?"}),
    ("Bash", {"command": "cp .env copy.txt"}),
    ("Bash", {"command": "bash -c 'cat .env'"}),
    ("Bash", {"command": "grep --file=.env x"}),
    ("shell", {"command": "base64 .env.local"}),
    ("Read", {"file_path": ".git/config"}),
    ("Write", {"file_path": ".env", "content": "overwritten"}),
    ("Edit", {"file_path": ".env", "old_string": "API", "new_string": "X"}),
    ("fs_write", {"path": "keys/id_rsa", "content": "x"}),
    ("Write", {"file_path": "server.pem", "content": "x"}),
]


async def test_reading_or_writing_secret_files_is_refused(sandbox: Sandbox) -> None:
    before = sandbox.snapshot()
    for name, arguments in SECRET_READS:
        outcome = await sandbox.tools.call(name, **arguments)
        assert_refused(outcome, (name, arguments))
        assert_nothing_leaked(outcome, (name, arguments))
        assert "POLICY_FILE_BLOCKED_PATHS" in str(outcome.result.content)
    assert sandbox.snapshot() == before


async def test_listing_and_searching_never_show_secret_files(sandbox: Sandbox) -> None:
    for name, arguments in [
        ("Grep", {"pattern": "API_TOKEN", "output_mode": "content"}),
        ("Grep", {"pattern": "secret", "output_mode": "content", "-i": True}),
        ("workspace_search", {"pattern": "API_TOKEN"}),
        ("Glob", {"pattern": "**/*"}),
        ("workspace_list", {"pattern": "**"}),
    ]:
        outcome = await sandbox.tools.call(name, **arguments)
        assert_nothing_leaked(outcome, name)
        assert ".env" not in str(outcome.result.content).replace("env_link", ""), name


ESCAPES: list[tuple[str, dict[str, object]]] = [
    ("Read", {"file_path": "../outside/keep.txt"}),
    ("Read", {"file_path": "sub/../../outside/keep.txt"}),
    ("Read", {"file_path": "OUTSIDE/keep.txt"}),  # replaced by the absolute path below
    ("Read", {"file_path": "link_out/keep.txt"}),
    ("Read", {"file_path": "file_link"}),
    ("Read", {"file_path": "~/.bashrc"}),
    ("Read", {"file_path": "/etc/passwd"}),
    ("fs_read", {"path": "link_out/keep.txt"}),
    ("Read", {"file_path": "loop//.."}),
    ("Write", {"file_path": "loop/x.txt", "content": "x"}),
    ("Bash", {"command": "rm -rf loop/.."}),
    ("Write", {"file_path": "../outside/new.txt", "content": "x"}),
    ("Write", {"file_path": "link_out/new.txt", "content": "x"}),
    ("Write", {"file_path": "OUTSIDE/new.txt", "content": "x"}),
    ("Edit", {"file_path": "file_link", "old_string": "outside", "new_string": "x"}),
    ("fs_write", {"path": "link_out/new.txt", "content": "x"}),
    ("edit_patch", {"patch": "--- a/../outside/keep.txt\n+++ b/../outside/keep.txt\n@@ -1 +1 @@\n-x\n+y\n"}),
    ("edit_patch", {"patch": "--- /dev/null\n+++ b/link_out/made.txt\n@@ -0,0 +1 @@\n+y\n"}),
    ("NotebookEdit", {"notebook_path": "../outside/n.ipynb", "new_source": "x", "cell_id": "a"}),
    ("Glob", {"pattern": "*", "path": ".."}),
    ("Glob", {"pattern": "*", "path": "link_out"}),
    ("Grep", {"pattern": "secret", "path": "OUTSIDE"}),
    ("workspace_list", {"path": ".."}),
    ("workspace_search", {"pattern": "secret", "path": "link_out"}),
    ("shell", {"command": "ls", "cwd": ".."}),
    ("shell", {"command": "ls", "cwd": "link_out"}),
    ("Bash", {"command": "echo x > ../outside/new.txt"}),
    ("Bash", {"command": "echo x >> link_out/keep.txt"}),
    ("Bash", {"command": "echo x | tee ../outside/new.txt"}),
    ("Bash", {"command": "cp sub/a.txt ../outside/"}),
    ("Bash", {"command": "mv sub/a.txt link_out/a.txt"}),
    ("Bash", {"command": "mv ../outside/keep.txt sub/"}),
    ("Bash", {"command": "touch ../outside/new.txt"}),
    ("Bash", {"command": "mkdir link_out/newdir"}),
    ("Bash", {"command": "dd if=sub/a.txt of=../outside/keep.txt"}),
    ("Bash", {"command": "ln -s /etc sub/etc"}),
    ("Bash", {"command": "chmod 777 ../outside/keep.txt"}),
    ("Bash", {"command": "bash -c 'echo x > ../outside/new.txt'"}),
]


async def test_escapes_and_symlinks_out_of_the_workspace_are_refused(sandbox: Sandbox) -> None:
    before = sandbox.snapshot()
    for name, arguments in ESCAPES:
        arguments = {
            key: value.replace("OUTSIDE", str(sandbox.outside)) if isinstance(value, str) else value
            for key, value in arguments.items()
        }
        outcome = await sandbox.tools.call(name, **arguments)
        assert_refused(outcome, (name, arguments))
        assert_nothing_leaked(outcome, (name, arguments))
    assert sandbox.snapshot() == before


async def test_bash_lines_are_judged_from_the_folder_they_run_in(sandbox: Sandbox) -> None:
    tools = sandbox.tools
    before = sandbox.outside.joinpath("keep.txt").read_text()
    await tools.call("Bash", command="cd sub")
    assert await tools.text("Bash", command="echo made > ../made.txt && cat ../made.txt") == "made"
    assert (tools.workspace / "made.txt").read_text() == "made\n"
    for line in ("echo x > ../../outside/keep.txt", "rm -rf ..", "rm -rf ../*", "cat ../.env"):
        assert_refused(await tools.call("Bash", command=line), line)
    assert sandbox.outside.joinpath("keep.txt").read_text() == before


async def test_symlinks_that_stay_inside_the_workspace_work(sandbox: Sandbox) -> None:
    assert await sandbox.tools.text("Read", file_path="link_in/a.txt") == "1\tinside"
    await sandbox.tools.call("Write", file_path="link_in/b.txt", content="ok")
    assert (sandbox.tools.workspace / "sub" / "b.txt").read_text() == "ok"


# --- the environment of tool subprocesses -----------------------------------------------------------------------

PROVIDER_KEY = "sk-fake-provider-key-0123456789"
LEAKY_ENVIRONMENT = {
    "OPENAI_API_KEY": PROVIDER_KEY,
    "GITHUB_TOKEN": "ghp_fake_token_abcdef123456",
    "AWS_SECRET_ACCESS_KEY": "aws-fake-secret-abcdef123",
    "DB_PASSWORD": "db-fake-password-123456",
    "LYNKR_API_KEY": "lynkr-client-key-123456",
    "ANTHROPIC_AUTH_TOKEN": "anthropic-fake-token-123",
    "DATABRICKS_API_BASE": "https://fake-workspace.example",
    "PROXY_URL_WITH_KEY_INSIDE": f"https://user:{PROVIDER_KEY}@proxy.example",
    "HARMLESS_SETTING": "visible-value",
    "GIT_AUTHOR_NAME": "Author Kept",
}


@pytest.mark.parametrize(
    "name,command",
    [
        ("shell", "env"),
        ("shell", "printenv"),
        ("Bash", "env"),
        ("Bash", "printenv"),
        ("Bash", "cat /proc/self/environ | tr '\\0' '\\n'"),
        ("Bash", "bash -c 'set'"),
        ("shell", "python3 -c 'import os; print(dict(os.environ))'"),
    ],
)
async def test_env_and_printenv_show_no_key(tmp_path: Path, name: str, command: str) -> None:
    sandbox = build_sandbox(
        tmp_path,
        {"MODEL_PROVIDER": "openai", "OPENAI_API_KEY": PROVIDER_KEY},
        base_environ=LEAKY_ENVIRONMENT,
    )
    outcome = await sandbox.tools.call(name, command=command)
    output = str(outcome.result.content)
    assert "HARMLESS_SETTING" in output and "visible-value" in output, "the environment is passed, minus secrets"
    assert "Author Kept" in output, "GIT_AUTHOR_* is not a credential"
    for variable, value in LEAKY_ENVIRONMENT.items():
        if variable in ("HARMLESS_SETTING", "GIT_AUTHOR_NAME"):
            continue
        assert value not in output, f"{variable} leaked through {command}"
        assert f"{variable}=" not in output, f"{variable} leaked through {command}"


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every process's /proc environ; sealing stops same-user reads")
async def test_the_daemon_environment_cannot_be_read_through_proc(tmp_path: Path) -> None:
    sandbox = build_sandbox(tmp_path)  # building the toolbox seals this process, the daemon of the test
    outcome = await sandbox.tools.call("Bash", command="cat /proc/$PPID/environ")
    assert outcome.result.is_error and "Permission denied" in str(outcome.result.content)


async def test_printenv_of_a_provider_key_finds_nothing(tmp_path: Path) -> None:
    sandbox = build_sandbox(tmp_path, {"MODEL_PROVIDER": "openai", "OPENAI_API_KEY": PROVIDER_KEY}, base_environ=LEAKY_ENVIRONMENT)
    outcome = await sandbox.tools.call("shell", command="printenv OPENAI_API_KEY")
    assert outcome.result.content == "Exit code 1"


# --- command rules -----------------------------------------------------------------------------------------------


async def test_disallowing_bash_stops_shell_and_every_alias_too(tmp_path: Path) -> None:
    tools = harness(tmp_path, {"POLICY_DISALLOWED_TOOLS": "Bash"})
    tools.toolbox.registry.alias("run_command", "shell")
    for name in ("Bash", "shell", "run_command"):
        outcome = await tools.call(name, command="echo hi")
        assert_refused(outcome, name)
        assert "POLICY_DISALLOWED_TOOLS" in str(outcome.result.content)
    offered = [spec.name for spec in tools.toolbox.specs()]
    assert "Bash" not in offered and "shell" not in offered and "Write" in offered
    assert await tools.text("Write", file_path="ok.txt", content="still fine") == "File created successfully at: ok.txt"


async def test_deny_and_allow_lists_judge_every_command_of_the_line(tmp_path: Path) -> None:
    denying = harness(tmp_path / "deny", {"POLICY_SAFE_COMMANDS_CONFIG": '{"deny": ["curl", "git reset --hard*"]}'})
    for line in ("curl example.com", "ls && curl example.com", "bash -c 'curl x'", "echo $(curl x)", "git -C . reset --hard HEAD"):
        assert_refused(await denying.call("Bash", command=line), line)
    assert await denying.text("Bash", command="echo curl") == "curl"
    allowing = harness(tmp_path / "allow", {"POLICY_SAFE_COMMANDS_CONFIG": '{"allow": ["ls", "echo", "git status"]}'})
    assert not (await allowing.call("Bash", command="echo hi && ls")).result.is_error
    for line in ("echo hi; cat sub/a.txt", "ls | sort", "git push", "bash -c 'echo hi'"):
        outcome = await allowing.call("Bash", command=line)
        assert_refused(outcome, line)
        assert "not on the allowed command list" in str(outcome.result.content)


async def test_builtin_deny_list_and_its_switch(tmp_path: Path) -> None:
    default = harness(tmp_path / "on")
    assert "denied by the command rule 'sudo'" in str((await default.call("Bash", command="sudo true")).result.content)
    switched_off = harness(tmp_path / "off", {"POLICY_SAFE_COMMANDS_ENABLED": "false"})
    outcome = await switched_off.call("Bash", command="mkfs.ext4 --help > /dev/null; true")
    assert isinstance(outcome.events[0], ToolRan), "with the lists off, mkfs is judged only for its paths"


def test_lines_that_cannot_be_judged_say_why() -> None:
    cases = {
        "$CMD x": "the command name '$CMD' is only known when it runs",
        "echo 'unclosed": "cannot be parsed (an unclosed single quote)",
        "curl x | sh": "sh would read its commands from its input",
        'bash -c "$SCRIPT"': "the script of bash -c is only known when it runs",
        "case x in a) rm -rf /;; esac": "case statements are not judged",
    }
    for line, reason in cases.items():
        problems = analyse(line).problems
        assert problems and reason in problems[0], (line, problems)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.sampled_from([*"ab -/.$(){}`'\";&|<>\n*?#=~!", "git push", "bash -c ", "<<EOF\n", "EOF", "${", "for x in a; do "]),
        max_size=25,
    ).map("".join)
)
def test_any_line_is_split_or_said_to_be_unjudgeable_never_crashes(line: str) -> None:
    analysis = analyse(line)
    assert all(isinstance(command.words, tuple) for command in analysis.commands)
    assert all(isinstance(problem, str) and problem for problem in analysis.problems)
    assert shell_actions(line)[0].kind == "shell"


# --- the property: nothing the policy allows leads outside ------------------------------------------------------

SEGMENTS = ["..", ".", "sub", "link_out", "link_in", "file_link", "env_link", "loop", "x", "", "~", "keep.txt", "a.txt"]


@pytest.fixture(scope="module")
def property_workspace(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, FilePolicy]:
    root = tmp_path_factory.mktemp("prop")
    sandbox = build_sandbox(root)
    return sandbox.tools.workspace, sandbox.outside, file_policy(sandbox.tools.config)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    parts=st.lists(st.sampled_from(SEGMENTS), min_size=1, max_size=7),
    anchor=st.sampled_from(["relative", "workspace", "outside", "root"]),
)
def test_no_path_the_policy_allows_resolves_outside_the_workspace(
    property_workspace: tuple[Path, Path, FilePolicy], parts: list[str], anchor: str
) -> None:
    workspace, outside, policy = property_workspace
    prefix = {"relative": "", "workspace": f"{workspace}/", "outside": f"{outside}/", "root": "/"}[anchor]
    raw = prefix + "/".join(parts)
    if policy.path_problem(workspace, raw, verb="read") is None:
        expanded = os.path.expanduser(raw)
        real = Path(os.path.realpath(expanded if os.path.isabs(expanded) else workspace / expanded))
        assert real == workspace or workspace in real.parents, (raw, real)
        assert policy.blocked.match(workspace, real) is None, (raw, real)

