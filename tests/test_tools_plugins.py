"""Tools and policy rules from plugins (the ``lynkr.tools`` and ``lynkr.policies`` entry points), installed for real."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from lynkr.tools.events import ToolRefused
from lynkr.tools.toolbox import BrokenPlugin, build_toolbox
from tests.conftest import make_config
from tests.test_providers import PLUGIN_SOURCE, install_plugin
from tests.tool_harness import harness


@pytest.fixture
def example_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    site = tmp_path / "site"
    site.mkdir()
    install_plugin(PLUGIN_SOURCE, site)
    monkeypatch.syspath_prepend(str(site))
    yield
    for name in [name for name in sys.modules if name.startswith("lynkr_example_provider")]:
        sys.modules.pop(name)


def test_without_the_plugin_its_tools_are_not_there(tmp_path: Path) -> None:
    assert "example_run" not in build_toolbox(make_config(tmp_path)).registry


async def test_plugin_tool_and_alias_run(tmp_path: Path, example_plugin: None) -> None:
    tools = harness(tmp_path)
    assert "example_run" in [spec.name for spec in tools.toolbox.specs(["plugin"])]
    assert await tools.text("example_run", line="echo from the plugin") == "from the plugin"
    assert tools.toolbox.registry.resolve("example_sh").spec.name == "shell"
    assert await tools.text("example_sh", command="echo via the alias") == "via the alias"


async def test_policy_judges_the_plugin_tool_and_alias_like_bash(tmp_path: Path, example_plugin: None) -> None:
    tools = harness(tmp_path)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("keep")
    for name, arguments in [
        ("example_run", {"line": "rm -rf ../outside"}),
        ("example_run", {"line": "bash -c 'cat .env'"}),
        ("example_sh", {"command": "echo ok; rm -rf ../outside"}),
        ("Bash", {"command": "rm -rf ../outside"}),
    ]:
        outcome = await tools.call(name, **arguments)
        assert outcome.result.is_error and isinstance(outcome.events[0], ToolRefused), name
    assert (outside / "keep.txt").read_text() == "keep"


async def test_disallowing_bash_disallows_the_plugin_tool_too(tmp_path: Path, example_plugin: None) -> None:
    tools = harness(tmp_path, {"POLICY_DISALLOWED_TOOLS": "Bash"})
    for name, arguments in [("example_run", {"line": "echo hi"}), ("example_sh", {"command": "echo hi"})]:
        outcome = await tools.call(name, **arguments)
        assert outcome.result.is_error and "POLICY_DISALLOWED_TOOLS" in str(outcome.result.content), name


async def test_plugin_policy_rule_refuses_whichever_tool_writes(tmp_path: Path, example_plugin: None) -> None:
    tools = harness(tmp_path)
    for name, arguments in [
        ("Write", {"file_path": "poetry.lock", "content": "x"}),
        ("fs_write", {"path": "sub/Cargo.lock", "content": "x"}),
        ("edit_patch", {"patch": "--- /dev/null\n+++ b/yarn.lock\n@@ -0,0 +1 @@\n+x\n"}),
    ]:
        outcome = await tools.call(name, **arguments)
        refused = outcome.events[0]
        assert isinstance(refused, ToolRefused) and refused.rule == "example_no_lockfiles", name
    assert not list(tools.workspace.rglob("*.lock"))
    assert await tools.text("Write", file_path="notes.txt", content="x") == "File created successfully at: notes.txt"


def test_a_broken_plugin_stops_the_toolbox_with_its_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    site = tmp_path / "site"
    (site / "broken_rules").mkdir(parents=True)
    (site / "broken_rules" / "__init__.py").write_text("raise ImportError('missing dependency')\n")
    dist_info = site / "broken_rules-1.0.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-rules\nVersion: 1.0\n")
    (dist_info / "entry_points.txt").write_text("[lynkr.policies]\nbroken = broken_rules:rules\n")
    monkeypatch.syspath_prepend(str(site))
    with pytest.raises(BrokenPlugin, match=r"plugin 'broken' \(broken_rules:rules\) in lynkr.policies failed to load"):
        build_toolbox(make_config(tmp_path))
