"""Finding MCP servers: manifest folders, the single manifest, the workspace's .mcp.json and TOML tables."""

from __future__ import annotations

import json
from pathlib import Path

from lynkr.mcp.manifest import discover, read_manifest
from lynkr.mcp.names import NAME_LIMIT, tool_name
from tests.conftest import make_config, write_toml


def test_every_source_is_read_and_broken_entries_are_skipped_with_one_line_each(tmp_path: Path) -> None:
    folder = tmp_path / "manifests"
    folder.mkdir()
    (folder / "a.json").write_text(json.dumps({"servers": [{"id": "one", "command": "echo", "args": ["x"]}]}))
    (folder / "b.json").write_text("{not json")
    (folder / "c.json").write_text(json.dumps([{"name": "two", "url": "http://127.0.0.1:9/mcp"}, {"name": "bad"}]))
    single = tmp_path / "single.json"
    single.write_text(json.dumps({"servers": [{"id": "three", "command": "cat", "env": {"A": "1"}}]}))
    write_toml(tmp_path, '[mcp.servers.five]\ncommand = "true"\n')
    (tmp_path / "workspace" / ".mcp.json").write_text(
        json.dumps({"mcpServers": {"four": {"type": "http", "url": "https://example.invalid/mcp", "headers": {"X": "y"}}}})
    )
    config = make_config(tmp_path, {"MCP_MANIFEST_DIRS": str(folder), "MCP_SERVER_MANIFEST": str(single)})
    found = discover(config.mcp, config.workspace_root)
    by_name = {server.name: server for server in found.servers}
    assert list(by_name) == ["one", "two", "three", "four", "five"]
    assert by_name["one"].args == ("x",) and by_name["one"].transport == "stdio"
    assert by_name["two"].transport == "http" and by_name["two"].url == "http://127.0.0.1:9/mcp"
    assert by_name["three"].env == {"A": "1"}
    assert by_name["four"].headers == {"X": "y"}
    assert by_name["five"].command == "true" and by_name["five"].source == "[mcp.servers]"
    lines = [problem.line() for problem in found.problems]
    assert len(lines) == 2
    assert "b.json: is not valid JSON" in lines[0]
    assert "server 'bad'" in lines[1] and 'needs a "command"' in lines[1]


def test_a_missing_single_manifest_says_how_to_fix_it(tmp_path: Path) -> None:
    servers, problems = read_manifest(tmp_path / "nope.json")
    assert servers == [] and "MCP_SERVER_MANIFEST" in problems[0].message


def test_server_table_values_are_masked_in_the_printable_config(tmp_path: Path) -> None:
    write_toml(tmp_path, '[mcp.servers.gh]\ncommand = "gh-mcp"\nenv = { GITHUB_TOKEN = "ghp_secret" }\n')
    config = make_config(tmp_path)
    assert "ghp_secret" not in json.dumps(config.masked())


def test_tool_names_follow_claude_codes_convention_and_are_shortened_deterministically() -> None:
    assert tool_name("time", "get_current_time") == "mcp__time__get_current_time"
    long = tool_name("a-server-with-a-rather-long-name", "and_a_tool_whose_name_goes_on_and_on_and_on")
    assert len(long) == NAME_LIMIT and long == tool_name(
        "a-server-with-a-rather-long-name", "and_a_tool_whose_name_goes_on_and_on_and_on"
    )
    assert long != tool_name("a-server-with-a-rather-long-name", "and_a_tool_whose_name_goes_on_and_on_and_of")
    dotted = tool_name("srv", "files.read")
    assert dotted.startswith("mcp__srv__files_read_") and dotted != tool_name("srv", "files_read")
