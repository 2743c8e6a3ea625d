"""lynkr's file tools on real temporary workspaces: reads, writes, patches, listings, searches, history, revert."""

from __future__ import annotations

from pathlib import Path

import attrs
import pygit2
import pytest

from lynkr.tools.base import ToolState
from lynkr.tools.events import FileWritten
from lynkr.tools.patch import PatchError, apply, parse
from tests.tool_harness import Harness, harness


@pytest.fixture
def tools(tmp_path: Path) -> Harness:
    return harness(tmp_path)


def edit_ids(tools: Harness) -> list[str]:
    return [event.edit_id for event in tools.recorded if isinstance(event, FileWritten)]


# --- fs_read / fs_write ------------------------------------------------------------------------------------------


async def test_fs_read_returns_a_numbered_line_range_and_says_how_to_read_on(tools: Harness) -> None:
    (tools.workspace / "f.txt").write_text("".join(f"l{n}\n" for n in range(1, 11)))
    assert await tools.text("fs_read", path="f.txt", start_line=3, end_line=4) == (
        "f.txt: lines 3-4 (of 10; read on with start_line=5)\n3\tl3\n4\tl4"
    )
    assert (await tools.text("fs_read", path="f.txt")).startswith("f.txt: lines 1-10 (of 10)\n1\tl1\n")
    bad = await tools.call("fs_read", path="f.txt", start_line=5, end_line=2)
    assert bad.result.is_error and "end_line 2 is before start_line 5" in str(bad.result.content)


async def test_fs_read_of_binary_huge_line_and_invalid_utf8_files(tools: Harness) -> None:
    (tools.workspace / "b.bin").write_bytes(bytes(range(256)))
    (tools.workspace / "bad.txt").write_bytes(b"ok\n\xff\xfe broken\n")
    assert "b.bin is a binary file" in await tools.text("fs_read", path="b.bin")
    assert "is not valid UTF-8 text" in await tools.text("fs_read", path="bad.txt")
    (tools.workspace / "long.txt").write_text("é" * 3_000_000 + "\nsecond\n")
    long_line = await tools.text("fs_read", path="long.txt")
    assert long_line == "long.txt: lines 1-2 (of 2)\n1\t" + "é" * 2000 + "\n2\tsecond", "a huge line is cut"


async def test_fs_write_creates_parents_and_records_what_it_replaced(tools: Harness) -> None:
    created = await tools.text("fs_write", path="a/b/c.txt", content="one")
    assert created.startswith("created a/b/c.txt (3 bytes); undo with workspace_edit_revert edit_id=")
    replaced = await tools.text("fs_write", path="a/b/c.txt", content="two")
    assert replaced.startswith("replaced a/b/c.txt")
    writes = [event for event in tools.recorded if isinstance(event, FileWritten)]
    assert [(w.path, w.before) for w in writes] == [("a/b/c.txt", None), ("a/b/c.txt", b"one")]


# --- edit_patch ---------------------------------------------------------------------------------------------------

ORIGINAL = "".join(f"line {n}\n" for n in range(1, 21))


async def test_edit_patch_applies_hunks_even_when_the_file_moved_a_little(tools: Harness) -> None:
    (tools.workspace / "f.txt").write_text("new first line\n" + ORIGINAL)
    patch = (
        "--- a/f.txt\n+++ b/f.txt\n"
        "@@ -2,3 +2,3 @@\n line 2\n-line 3\n+line three\n line 4\n"
        "@@ -15,3 +15,4 @@\n line 15\n line 16\n+inserted\n line 17\n"
    )
    result = await tools.text("edit_patch", patch=patch)
    assert result.startswith("applied the patch:\npatched f.txt (edit_id ")
    text = (tools.workspace / "f.txt").read_text()
    assert "line three\n" in text and "line 16\ninserted\nline 17\n" in text and "line 3\n" not in text


async def test_edit_patch_creates_and_deletes_files(tools: Harness) -> None:
    (tools.workspace / "gone.txt").write_text("bye\n")
    patch = (
        "--- /dev/null\n+++ b/new/made.txt\n@@ -0,0 +1,2 @@\n+hello\n+world\n"
        "--- a/gone.txt\n+++ /dev/null\n@@ -1 +0,0 @@\n-bye\n"
    )
    await tools.call("edit_patch", patch=patch)
    assert (tools.workspace / "new" / "made.txt").read_text() == "hello\nworld\n"
    assert not (tools.workspace / "gone.txt").exists()


async def test_a_patch_that_does_not_apply_names_the_hunk_and_writes_nothing(tools: Harness) -> None:
    (tools.workspace / "a.txt").write_text(ORIGINAL)
    (tools.workspace / "b.txt").write_text(ORIGINAL)
    patch = (
        "--- a/a.txt\n+++ b/a.txt\n@@ -1,2 +1,2 @@\n-line 1\n+LINE 1\n line 2\n"
        "--- a/b.txt\n+++ b/b.txt\n@@ -1,2 +1,2 @@\n-line 1\n+LINE 1\n line 2\n"
        "@@ -10,2 +10,2 @@\n-line ten\n+LINE 10\n line 11\n"
    )
    outcome = await tools.call("edit_patch", patch=patch)
    assert outcome.result.is_error
    message = str(outcome.result.content)
    assert "hunk 2 of b.txt (@@ -10,2 +10,2 @@) does not apply: at line 10 it expects 'line ten'" in message
    assert "Nothing was written" in message
    assert (tools.workspace / "a.txt").read_text() == ORIGINAL, "the hunks that did apply were not written either"
    assert (tools.workspace / "b.txt").read_text() == ORIGINAL
    assert edit_ids(tools) == []


async def test_a_malformed_patch_is_bad_input(tools: Harness) -> None:
    outcome = await tools.call("edit_patch", patch="this is not a diff")
    assert str(outcome.result.content).startswith("<tool_use_error>the patch cannot be read: no file header found")
    truncated = await tools.call("edit_patch", patch="--- a/x\n+++ b/x\n@@ -1,3 +1,3 @@\n line\n")
    assert "ends early" in str(truncated.result.content)


def test_patch_apply_keeps_a_missing_final_newline() -> None:
    [patch] = parse("--- a/x\n+++ b/x\n@@ -1,2 +1,2 @@\n a\n-b\n\\ No newline at end of file\n+c\n\\ No newline at end of file\n")
    assert apply("a\nb", patch) == "a\nc"
    with pytest.raises(PatchError, match="which does not exist"):
        apply(None, patch)


# --- workspace_list / workspace_search -------------------------------------------------------------------------


def populate(workspace: Path) -> None:
    (workspace / "src" / "pkg").mkdir(parents=True)
    (workspace / "src" / "pkg" / "mod.py").write_text("def find_me():\n    return 1\n")
    (workspace / "src" / "main.py").write_text("from pkg.mod import find_me\n")
    (workspace / "notes.md").write_text("find_me in prose\n")
    (workspace / "build").mkdir()
    (workspace / "build" / "gen.py").write_text("find_me = 'generated'\n")
    (workspace / "debug.log").write_text("find_me logged\n")
    (workspace / ".env").write_text("SECRET=find_me\n")
    (workspace / "data.bin").write_bytes(b"\x00find_me")
    (workspace / ".gitignore").write_text("build/\n*.log\n!keep.log\n")
    (workspace / "keep.log").write_text("find_me kept\n")


@pytest.mark.parametrize("as_git_repo", [False, True], ids=["plain-folder", "git-repo"])
async def test_workspace_list_honours_gitignore_and_hides_blocked_files(tools: Harness, as_git_repo: bool) -> None:
    populate(tools.workspace)
    if as_git_repo:
        pygit2.init_repository(str(tools.workspace))
    listing = (await tools.text("workspace_list")).splitlines()
    assert listing == [".gitignore", "data.bin", "keep.log", "notes.md", "src/main.py", "src/pkg/mod.py"]
    assert (await tools.text("workspace_list", pattern="**/*.py")).splitlines() == ["src/main.py", "src/pkg/mod.py"]
    assert (await tools.text("workspace_list", pattern="*.py", path="src")).splitlines() == ["src/main.py"]
    assert await tools.text("workspace_list", pattern="*.rs") == "no files match *.rs"


@pytest.mark.parametrize("as_git_repo", [False, True], ids=["plain-folder", "git-repo"])
async def test_workspace_search_finds_regex_matches_in_text_files_only(tools: Harness, as_git_repo: bool) -> None:
    populate(tools.workspace)
    if as_git_repo:
        pygit2.init_repository(str(tools.workspace))
    found = (await tools.text("workspace_search", pattern=r"find_\w+\b")).splitlines()
    assert found == [
        "keep.log:1: find_me kept",
        "notes.md:1: find_me in prose",
        "src/main.py:1: from pkg.mod import find_me",
        "src/pkg/mod.py:1: def find_me():",
    ]
    only_py = await tools.text("workspace_search", pattern="FIND_ME", glob="*.py", case_insensitive=True)
    assert only_py.splitlines() == ["src/main.py:1: from pkg.mod import find_me", "src/pkg/mod.py:1: def find_me():"]
    assert await tools.text("workspace_search", pattern="SECRET") == "no matches for SECRET", ".env is never searched"


async def test_workspace_search_in_a_subfolder_of_a_repository(tools: Harness) -> None:
    # The workspace is a folder inside the repository: ignore rules are asked with the repository's paths.
    repo_root = tools.workspace
    pygit2.init_repository(str(repo_root))
    populate(repo_root)
    (repo_root / "src" / "pkg" / ".gitignore").write_text("mod.py\n")
    assert await tools.text("workspace_search", pattern="find_me", path="src") == "src/main.py:1: from pkg.mod import find_me"


# --- history and revert ------------------------------------------------------------------------------------------


async def test_every_write_is_in_the_history_whichever_tool_made_it(tools: Harness) -> None:
    await tools.call("fs_write", path="a.txt", content="1")
    await tools.call("Write", file_path="b.txt", content="2")
    await tools.call("Edit", file_path="a.txt", old_string="1", new_string="11")
    await tools.call("edit_patch", patch="--- a/b.txt\n+++ b/b.txt\n@@ -1 +1 @@\n-2\n\\ No newline at end of file\n+22\n")
    history = (await tools.text("workspace_edit_history")).splitlines()
    assert [line.split()[1:4] for line in history] == [
        ["edit_patch", "changed", "b.txt"],
        ["Edit", "changed", "a.txt"],
        ["Write", "created", "b.txt"],
        ["fs_write", "created", "a.txt"],
    ]
    only_a = (await tools.text("workspace_edit_history", path="a.txt")).splitlines()
    assert [line.split()[1] for line in only_a] == ["Edit", "fs_write"]


async def test_revert_restores_content_and_deletes_files_that_did_not_exist(tools: Harness) -> None:
    (tools.workspace / "a.txt").write_text("original\n")
    await tools.call("Edit", file_path="a.txt", old_string="original", new_string="changed")
    await tools.call("Write", file_path="fresh.txt", content="new")
    edit_a, create_fresh = edit_ids(tools)
    assert "restored as before edit" in await tools.text("workspace_edit_revert", edit_id=edit_a)
    assert (tools.workspace / "a.txt").read_text() == "original\n"
    assert "deleted (it did not exist before)" in await tools.text("workspace_edit_revert", edit_id=create_fresh)
    assert not (tools.workspace / "fresh.txt").exists()
    history = await tools.text("workspace_edit_history")
    assert f"(reverts {edit_a})" in history and "(reverted)" in history


async def test_revert_refuses_when_the_file_changed_since_unless_forced(tools: Harness) -> None:
    await tools.call("fs_write", path="a.txt", content="v1")
    await tools.call("fs_write", path="a.txt", content="v2")
    first, _ = edit_ids(tools)
    refused = await tools.call("workspace_edit_revert", edit_id=first)
    assert refused.result.is_error and "changed after edit" in str(refused.result.content)
    assert (tools.workspace / "a.txt").read_text() == "v2"
    await tools.call("workspace_edit_revert", edit_id=first, force=True)
    assert not (tools.workspace / "a.txt").exists()
    unknown = await tools.text("workspace_edit_revert", edit_id="nope")
    assert "no recorded edit has edit_id nope" in unknown


async def test_revert_works_from_the_recorded_events_alone(tmp_path: Path) -> None:
    """After a restart the state is folded again from the log: a fresh toolbox reverts an edit it never saw."""
    first = harness(tmp_path)
    await first.call("fs_write", path="a.txt", content="before")
    await first.call("fs_write", path="a.txt", content="after")
    _, second_edit = edit_ids(first)
    restarted = harness(tmp_path)
    state = ToolState.empty(restarted.toolbox.projections)
    for event in first.recorded:
        state = state.apply(event)
    restarted.context = attrs.evolve(restarted.context, state=state, session_id="another-session")
    await restarted.call("workspace_edit_revert", edit_id=second_edit)
    assert (tmp_path / "workspace" / "a.txt").read_text() == "before"


async def test_search_says_which_files_it_skipped_and_edits_refuse_huge_files(tools: Harness) -> None:
    (tools.workspace / "latin1.txt").write_bytes(b"needle caf\xe9\n")
    (tools.workspace / "ok.txt").write_text("needle\n")
    found = await tools.text("workspace_search", pattern="needle")
    assert found == "ok.txt:1: needle\n(skipped, too large or not text: latin1.txt)"
    huge = tools.workspace / "huge.txt"
    huge.write_text("needle\n" * 1_500_000)  # 10.5 MB
    edit = await tools.text("Edit", file_path="huge.txt", old_string="needle", new_string="pin", replace_all=True)
    assert "larger than the 8192 KB this tool handles in one piece" in edit
    assert huge.stat().st_size == 10_500_000
