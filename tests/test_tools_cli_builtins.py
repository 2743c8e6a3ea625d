"""The CLI's built-in tools under their own names: the CLI's input shapes in, the CLI's result shapes out."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio

from lynkr.events.codec import decode, encode
from lynkr.tools.base import Action, Refusal, Registry, ToolContext, ToolResult, ToolSpec
from lynkr.tools.events import FileWritten, ToolRan, ToolRefused
from lynkr.tools.runner import Toolbox, run_call
from tests.tool_harness import Harness, harness


@pytest.fixture
def tools(tmp_path: Path) -> Harness:
    return harness(tmp_path)


# --- the runner's own answers ----------------------------------------------------------------------------------


async def test_unknown_tool_gets_the_cli_error(tools: Harness) -> None:
    outcome = await tools.call("Teleport", where="mars")
    assert outcome.result.content == "<tool_use_error>Error: No such tool available: Teleport</tool_use_error>"
    assert outcome.result.is_error and outcome.tool == ""
    ran = outcome.events[0]
    assert isinstance(ran, ToolRan) and ran.canonical == "" and ran.is_error


async def test_schema_invalid_input_gets_the_cli_input_validation_error(tools: Harness) -> None:
    outcome = await tools.call("Bash", cmd="ls")
    assert outcome.result.content == (
        "<tool_use_error>InputValidationError: Bash failed due to the following issues:\n"
        "The required parameter `command` is missing\n"
        "An unexpected parameter `cmd` was provided</tool_use_error>"
    )


@attrs.frozen
class Exploding:
    spec: ToolSpec = ToolSpec(name="explode", description="raises", input_schema={"type": "object"})

    def actions(self, arguments: Mapping[str, Any]) -> Sequence[Action]:
        return []

    async def run(self, arguments: Mapping[str, Any], context: ToolContext) -> ToolResult:
        raise RuntimeError("boom")


async def test_a_tool_that_raises_gives_an_error_result_not_a_crash(tools: Harness) -> None:
    toolbox = Toolbox(registry=Registry([Exploding()]), rules=(), projections=())
    outcome = await run_call(name="explode", tool_use_id="t1", arguments={}, toolbox=toolbox, context=tools.context)
    assert outcome.result.is_error
    assert outcome.result.content == "Error: explode failed: RuntimeError: boom"


@attrs.frozen
class BrokenRule:
    name: str = "broken"

    async def judge(self, action: Action, context: ToolContext) -> Refusal | None:
        raise ValueError("cannot decide")


async def test_a_policy_rule_that_fails_refuses_the_call(tools: Harness) -> None:
    toolbox = attrs.evolve(tools.toolbox, rules=(BrokenRule(), *tools.toolbox.rules))
    outcome = await run_call(
        name="Write", tool_use_id="t1", arguments={"file_path": "x.txt", "content": "x"}, toolbox=toolbox,
        context=tools.context,
    )
    assert outcome.result.is_error and "could not judge it" in str(outcome.result.content)
    assert isinstance(outcome.events[0], ToolRefused)
    assert not (tools.workspace / "x.txt").exists()


async def test_tool_event_arguments_are_scrubbed(tmp_path: Path) -> None:
    key = "sk-test-provider-key-123456"
    tools = harness(tmp_path, {"MODEL_PROVIDER": "openai", "OPENAI_API_KEY": key})
    outcome = await tools.call("Bash", command=f"echo {key} > /dev/null")
    ran = outcome.events[0]
    assert isinstance(ran, ToolRan)
    assert key not in json.dumps(ran.arguments) and "***" in ran.arguments["command"]


async def test_configured_secrets_are_masked_in_what_tools_return(tmp_path: Path) -> None:
    key = "sk-test-provider-key-654321"
    tools = harness(tmp_path, {"MODEL_PROVIDER": "openai", "OPENAI_API_KEY": key})
    (tools.workspace / "config.txt").write_text(f"key = {key}\n")
    assert await tools.text("Bash", command="X=config.txt; cat $X") == "key = ***"
    assert await tools.text("Read", file_path="config.txt") == "1\tkey = ***"


async def test_tool_events_survive_the_log_codec(tools: Harness) -> None:
    await tools.call("Write", file_path="a.txt", content="one")
    await tools.call("Write", file_path="a.txt", content="two")
    await tools.call("Read", file_path="../outside.txt")
    for event in tools.recorded:
        assert decode(1, encode(1, "sess", event)).event == event
    written = [event for event in tools.recorded if isinstance(event, FileWritten)]
    assert [w.before for w in written] == [None, b"one"]
    assert any(isinstance(event, ToolRefused) for event in tools.recorded)


# --- Bash --------------------------------------------------------------------------------------------------------


async def test_bash_results_are_shaped_like_the_cli(tools: Harness) -> None:
    failed = await tools.call("Bash", command="echo hello; echo err >&2; exit 3", description="x")
    assert (failed.result.content, failed.result.is_error) == ("Exit code 3\nhello\nerr", True)
    quiet = await tools.call("Bash", command="true")
    assert (quiet.result.content, quiet.result.is_error) == ("(Bash completed with no output)", False)


async def test_bash_keeps_its_working_folder_between_calls_like_the_cli(tools: Harness) -> None:
    (tools.workspace / "sub" / "deeper").mkdir(parents=True)
    assert await tools.text("Bash", command="cd sub && echo moved") == "moved"
    assert await tools.text("Bash", command="pwd") == str(tools.workspace / "sub")
    failed = await tools.call("Bash", command="cd deeper; exit 4")
    assert failed.result.content == "Exit code 4", "the command's own exit status is kept"
    assert await tools.text("Bash", command="cd deeper; false; pwd") == str(tools.workspace / "sub" / "deeper")
    assert await tools.text("Bash", command="cd ../../.. && echo out") == f"out\nShell cwd was reset to {tools.workspace}"
    assert await tools.text("Bash", command="pwd") == str(tools.workspace)
    assert await tools.text("shell", command="pwd") == str(tools.workspace), "lynkr's shell starts at the root"


async def test_bash_timeout_is_in_milliseconds(tools: Harness) -> None:
    outcome = await tools.call("Bash", command="sleep 30", timeout=300)
    assert str(outcome.result.content).startswith("Command timed out after 0.3s")


async def test_bash_in_the_background_is_refused_as_bad_input(tools: Harness) -> None:
    outcome = await tools.call("Bash", command="sleep 1", run_in_background=True)
    assert str(outcome.result.content).startswith("<tool_use_error>run_in_background is not available")


# --- Read --------------------------------------------------------------------------------------------------------


async def test_read_numbers_lines_like_cat_n(tools: Harness) -> None:
    (tools.workspace / "f.txt").write_text("vm\nsecond\n")
    assert await tools.text("Read", file_path=str(tools.workspace / "f.txt")) == "1\tvm\n2\tsecond"
    assert await tools.text("Read", file_path="f.txt", offset=2, limit=1) == "2\tsecond"


async def test_read_past_the_end_and_of_an_empty_file_warn(tools: Harness) -> None:
    (tools.workspace / "f.txt").write_text("a\nb\n")
    (tools.workspace / "empty.txt").write_text("")
    assert "shorter than the provided offset (9). The file has 2 lines." in await tools.text("Read", file_path="f.txt", offset=9)
    assert "the file exists but the contents are empty" in await tools.text("Read", file_path="empty.txt")


async def test_read_of_a_missing_file_or_a_folder_is_a_tool_use_error(tools: Harness) -> None:
    missing = await tools.call("Read", file_path="nope.txt")
    assert missing.result.content == "<tool_use_error>File does not exist: nope.txt</tool_use_error>"
    (tools.workspace / "dir").mkdir()
    folder = await tools.text("Read", file_path="dir")
    assert folder.startswith("<tool_use_error>dir is a folder")


async def test_read_of_binary_and_invalid_utf8_files_is_a_clear_error(tools: Harness) -> None:
    (tools.workspace / "blob.bin").write_bytes(b"\x7fELF\x00\x01\x02")
    (tools.workspace / "latin1.txt").write_bytes(b"caf\xe9\n")
    binary = await tools.text("Read", file_path="blob.bin")
    assert "blob.bin is a binary file" in binary and binary.startswith("<tool_use_error>")
    latin = await tools.text("Read", file_path="latin1.txt")
    assert "not valid UTF-8 text (byte 0xe9 at offset 3" in latin


async def test_read_of_a_huge_file_asks_for_offset_and_limit_and_ranges_still_work(tools: Harness) -> None:
    huge = tools.workspace / "huge.log"
    with huge.open("w") as handle:
        for number in range(1, 60001):
            handle.write(f"line {number}\n")
    whole = await tools.text("Read", file_path="huge.log")
    assert "exceeds maximum allowed size" in whole and "Use offset and limit" in whole
    assert await tools.text("Read", file_path="huge.log", offset=59999, limit=5) == "59999\tline 59999\n60000\tline 60000"


async def test_read_of_an_image_returns_an_image_block(tools: Harness) -> None:
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16
    (tools.workspace / "pic.png").write_bytes(png)
    outcome = await tools.call("Read", file_path="pic.png")
    assert outcome.result.content == [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": base64.b64encode(png).decode()}}
    ]


# --- Write and Edit ----------------------------------------------------------------------------------------------


async def test_write_creates_then_updates_and_records_each_write(tools: Harness) -> None:
    assert await tools.text("Write", file_path="w.txt", content="written\n") == "File created successfully at: w.txt"
    assert await tools.text("Write", file_path="w.txt", content="again\n") == "The file w.txt has been updated successfully."
    assert (tools.workspace / "w.txt").read_text() == "again\n"
    writes = [event for event in tools.recorded if isinstance(event, FileWritten)]
    assert [(w.path, w.before, w.tool) for w in writes] == [("w.txt", None, "Write"), ("w.txt", b"written\n", "Write")]


async def test_edit_replaces_a_unique_string(tools: Harness) -> None:
    (tools.workspace / "e.py").write_text("a = 1\nb = 2\n")
    assert await tools.text("Edit", file_path="e.py", old_string="b = 2", new_string="b = 3") == (
        "The file e.py has been updated successfully."
    )
    assert (tools.workspace / "e.py").read_text() == "a = 1\nb = 3\n"


async def test_edit_errors_are_the_cli_tool_use_errors(tools: Harness) -> None:
    (tools.workspace / "e.py").write_text("x = 1\nx = 1\n")
    not_found = await tools.text("Edit", file_path="e.py", old_string="y = 2", new_string="z")
    assert not_found == "<tool_use_error>String to replace not found in file.\nString: y = 2</tool_use_error>"
    several = await tools.text("Edit", file_path="e.py", old_string="x = 1", new_string="x = 2")
    assert several.startswith("<tool_use_error>Found 2 matches of the string to replace, but replace_all is false.")
    same = await tools.text("Edit", file_path="e.py", old_string="x", new_string="x")
    assert same == "<tool_use_error>No changes to make: old_string and new_string are exactly the same.</tool_use_error>"
    missing = await tools.text("Edit", file_path="nope.py", old_string="a", new_string="b")
    assert missing == "<tool_use_error>File does not exist: nope.py</tool_use_error>"
    assert (tools.workspace / "e.py").read_text() == "x = 1\nx = 1\n", "a failed edit writes nothing"
    assert not any(isinstance(event, FileWritten) for event in tools.recorded)


async def test_edit_replace_all_and_create_with_empty_old_string(tools: Harness) -> None:
    (tools.workspace / "e.py").write_text("x = 1\nx = 1\n")
    await tools.call("Edit", file_path="e.py", old_string="x = 1", new_string="x = 2", replace_all=True)
    assert (tools.workspace / "e.py").read_text() == "x = 2\nx = 2\n"
    await tools.call("Edit", file_path="new.py", old_string="", new_string="print(1)\n")
    assert (tools.workspace / "new.py").read_text() == "print(1)\n"


async def test_edit_of_a_binary_file_is_refused_cleanly(tools: Harness) -> None:
    (tools.workspace / "blob.bin").write_bytes(b"\x00abc")
    text = await tools.text("Edit", file_path="blob.bin", old_string="abc", new_string="def")
    assert "binary file" in text
    assert (tools.workspace / "blob.bin").read_bytes() == b"\x00abc"


# --- Glob, Grep, NotebookEdit ------------------------------------------------------------------------------------


async def test_glob_lists_matches_as_absolute_paths_honouring_gitignore(tools: Harness) -> None:
    ws = tools.workspace
    (ws / "src").mkdir()
    (ws / "src" / "a.py").write_text("")
    (ws / "build").mkdir()
    (ws / "build" / "gen.py").write_text("")
    (ws / ".gitignore").write_text("build/\n")
    assert await tools.text("Glob", pattern="**/*.py") == str(ws / "src" / "a.py")
    assert await tools.text("Glob", pattern="*.rs") == "No files found"


async def test_grep_modes(tools: Harness) -> None:
    ws = tools.workspace
    (ws / "a.py").write_text("import os\nTODO one\nx\n")
    (ws / "b.md").write_text("TODO two\n")
    files = await tools.text("Grep", pattern="TODO")
    assert files.startswith("Found 2 files\n") and str(ws / "a.py") in files
    content = await tools.text("Grep", pattern="TODO", output_mode="content", type="py", **{"-B": 1})
    assert content == f"{ws / 'a.py'}-1-import os\n{ws / 'a.py'}:2:TODO one"
    count = await tools.text("Grep", pattern="todo", output_mode="count", **{"-i": True})
    assert count.endswith("Found 2 total occurrences across 2 files.")
    assert await tools.text("Grep", pattern="nothing-like-this") == "No files found"
    bad = await tools.text("Grep", pattern="(")
    assert bad.startswith("<tool_use_error>'(' is not a valid regular expression")


async def test_notebook_edit_replaces_inserts_and_deletes_cells(tools: Harness) -> None:
    notebook = {
        "cells": [{"cell_type": "code", "id": "c1", "metadata": {}, "source": ["x = 1"], "outputs": [1], "execution_count": 3}],
        "metadata": {},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    path = tools.workspace / "n.ipynb"
    path.write_text(json.dumps(notebook))
    assert await tools.text("NotebookEdit", notebook_path="n.ipynb", cell_id="c1", new_source="y = 2") == "Updated cell c1 with y = 2"
    cell = json.loads(path.read_text())["cells"][0]
    assert (cell["source"], cell["outputs"], cell["execution_count"]) == (["y = 2"], [], None)
    inserted = await tools.text("NotebookEdit", notebook_path="n.ipynb", cell_id="c1", new_source="# T", cell_type="markdown", edit_mode="insert")
    assert inserted.startswith("Inserted cell ")
    assert [c["cell_type"] for c in json.loads(path.read_text())["cells"]] == ["code", "markdown"]
    assert await tools.text("NotebookEdit", notebook_path="n.ipynb", cell_id="c1", new_source="", edit_mode="delete") == "Deleted cell c1"
    assert [c["cell_type"] for c in json.loads(path.read_text())["cells"]] == ["markdown"]
    missing = await tools.text("NotebookEdit", notebook_path="n.ipynb", cell_id="zz", new_source="")
    assert missing == '<tool_use_error>Cell with ID "zz" not found in notebook.</tool_use_error>'


# --- WebFetch ----------------------------------------------------------------------------------------------------


@pytest.fixture
async def web_server(nursery: trio.Nursery) -> AsyncIterator[int]:
    """A tiny real HTTP server on loopback: ``/page`` serves HTML, ``/hop`` redirects to a private address."""

    async def serve(stream: trio.SocketStream) -> None:
        request = b""
        while b"\r\n\r\n" not in request:
            chunk = await stream.receive_some(4096)
            if not chunk:
                return
            request += chunk
        path = request.split(b" ", 2)[1]
        if path == b"/hop":
            head = b"HTTP/1.1 302 Found\r\nLocation: http://10.1.2.3/secret\r\nContent-Length: 0\r\n"
            body = b""
        else:
            body = b"<html><head><script>var x=1;</script></head><body><h1>Title</h1><p>Hello &amp; welcome</p></body></html>"
            head = b"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: %d\r\n" % len(body)
        await stream.send_all(head + b"Connection: close\r\n\r\n" + body)
        await stream.aclose()

    listeners = await nursery.start(partial(trio.serve_tcp, serve, 0, host="127.0.0.1"))
    yield listeners[0].socket.getsockname()[1]
    nursery.cancel_scope.cancel()


async def test_webfetch_refuses_loopback_link_local_and_private_addresses(tools: Harness, web_server: int) -> None:
    for url in (f"http://127.0.0.1:{web_server}/page", "http://localhost/", "http://169.254.169.254/latest/meta-data", "http://10.0.0.7/", "http://[::1]/"):
        outcome = await tools.call("WebFetch", url=url, prompt="summarize")
        assert outcome.result.is_error, url
        assert "WebFetch reaches public addresses only" in str(outcome.result.content), url
        assert isinstance(outcome.events[0], ToolRefused)


async def test_webfetch_reaches_an_allowed_host_and_judges_every_redirect(tmp_path: Path, web_server: int) -> None:
    tools = harness(tmp_path, {"LYNKR_WEB_FETCH_ALLOWED_HOSTS": "127.0.0.1"})
    page = await tools.text("WebFetch", url=f"http://127.0.0.1:{web_server}/page", prompt="what is it")
    assert page.startswith(f"Content of http://127.0.0.1:{web_server}/page (status 200):")
    assert "Title" in page and "Hello & welcome" in page and "var x" not in page
    hop = await tools.call("WebFetch", url=f"http://127.0.0.1:{web_server}/hop", prompt="x")
    assert hop.result.is_error and "10.1.2.3 resolves to 10.1.2.3, a private address" in str(hop.result.content)
