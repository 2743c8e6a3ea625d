"""The index tools through the real runner (schema check, policy, run), over a real index of a tmp workspace;
the generated CLAUDE.md; and ``lynkr index ...`` on the command line."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trio

from lynkr.config import Config
from lynkr.index import claude_md
from lynkr.index.handle import IndexHandle
from lynkr.index.repomap import fit, rank_definitions, seeds_from
from lynkr.index.store import IndexStore
from lynkr.index.symbols import IndexReader
from lynkr.index.writer import IndexWriter
from lynkr.tools.runner import Outcome, Toolbox, run_call
from lynkr.tools.toolbox import build_toolbox, tool_context
from tests.conftest import make_config
from tests.test_cli import cli_env, lynkr

FILES = {
    "pyproject.toml": '[project]\nname = "demo"\ndependencies = ["flask>=3", "pytest"]\n[tool.ruff]\nline-length = 100\n',
    "demo/store.py": (
        "class Store:\n"
        "    def load(self, key):\n"
        "        return key\n\n\n"
        "def open_store(path):\n"
        "    return Store()\n"
    ),
    "demo/cache.py": (
        "from demo.store import open_store\n\n\n"
        "class Cache:\n"
        "    def get(self, key):\n"
        "        return open_store(key).load(key)\n"
    ),
    "demo/app.py": "from demo.cache import Cache\n\n\ndef serve():\n    return Cache().get('x')\n",
    "tests/test_cache.py": "from demo.cache import Cache\n\n\ndef test_get():\n    assert Cache().get('a')\n",
}


def _workspace(config: Config) -> None:
    for path, text in FILES.items():
        target = config.workspace_root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)


@pytest.fixture
def indexed(tmp_path: Path) -> Iterator[tuple[Config, IndexStore]]:
    config = make_config(tmp_path)
    _workspace(config)
    store = IndexStore.open(config.data_dir)
    IndexWriter(store, config.workspace_root.resolve(), max_file_bytes=config.index.max_file_bytes).run()
    yield config, store
    store.close()


def _handle(config: Config, store: IndexStore) -> IndexHandle:
    async def rebuild() -> dict[str, Any]:
        writer = IndexWriter(store, config.workspace_root.resolve(), max_file_bytes=config.index.max_file_bytes)

        def again() -> dict[str, Any]:
            writer.forget()
            return writer.run().as_dict()

        return await trio.to_thread.run_sync(again)

    return IndexHandle(reader=IndexReader(store), rebuild=rebuild)


async def _call(config: Config, toolbox: Toolbox, index: IndexHandle | None, name: str, **arguments: Any) -> Outcome:
    context = tool_context(config, toolbox, index=index)
    return await run_call(name=name, tool_use_id="toolu_1", arguments=arguments, toolbox=toolbox, context=context)


async def _text(config: Config, toolbox: Toolbox, index: IndexHandle, name: str, **arguments: Any) -> str:
    outcome = await _call(config, toolbox, index, name, **arguments)
    assert not outcome.result.is_error, outcome.result.content
    assert isinstance(outcome.result.content, str)
    return outcome.result.content


async def test_symbol_tools_answer_from_the_index(indexed: tuple[Config, IndexStore]) -> None:
    config, store = indexed
    toolbox = build_toolbox(config)
    index = _handle(config, store)
    found = await _text(config, toolbox, index, "workspace_symbol_search", query="Cache")
    assert found.splitlines()[1] == "demo/cache.py:4:1  class Cache  [python]  class Cache:"
    fuzzy = await _text(config, toolbox, index, "workspace_symbol_search", query="opn_stor")
    assert "demo/store.py:6:1  function open_store" in fuzzy
    methods = await _text(config, toolbox, index, "workspace_symbol_search", query="get", kind=["method"])
    assert "method Cache.get" in methods
    definition = await _text(config, toolbox, index, "workspace_goto_definition", symbol="Store.load")
    assert definition.splitlines()[1] == "demo/store.py:2:5-3  method Store.load  def load(self, key):"
    references = await _text(config, toolbox, index, "workspace_symbol_references", symbol="open_store")
    assert references.splitlines()[1:] == ["demo/cache.py:6:16  call in Cache.get"]
    summary = await _text(config, toolbox, index, "project_summary")
    assert "Frameworks: Flask, pytest." in summary
    assert "run them with: python -m pytest" in summary
    assert "Tests: 1 test files, 1 test functions" in summary
    rebuilt = await _text(config, toolbox, index, "workspace_index_rebuild")
    assert rebuilt.startswith("Index rebuilt: 5 file(s) parsed")


async def test_repo_map_ranks_the_asked_about_code_and_is_stable(indexed: tuple[Config, IndexStore]) -> None:
    config, store = indexed
    toolbox = build_toolbox(config)
    index = _handle(config, store)
    first = await _text(config, toolbox, index, "workspace_repo_map", question="how does Cache get its Store?",
                        max_tokens=64)
    assert "demo/cache.py:\n    4│ class Cache:\n" in first
    again = await _text(config, toolbox, index, "workspace_repo_map", question="how does Cache get its Store?",
                        max_tokens=64)
    assert again == first
    assert len(first) <= 64 * 4
    fresh = IndexReader(store)  # a new reader over the unchanged index gives the same bytes
    assert await _text(config, toolbox, IndexHandle(reader=fresh), "workspace_repo_map",
                       question="how does Cache get its Store?", max_tokens=64) == first
    bigger = await _text(config, toolbox, index, "workspace_repo_map", max_tokens=2000)
    assert {"demo/store.py:", "demo/cache.py:", "demo/app.py:"} <= set(bigger.splitlines())
    # The ranking behind it: names in the question first, then what they lean on; a file seeds its own code.
    snapshot = index.reader.snapshot()
    ranked = rank_definitions(index.reader, seeds_from(snapshot, text="how does Cache get its Store?"))
    assert [d.qualified for d in ranked[:3]] == ["Cache", "Cache.get", "Store"]
    assert fit(ranked, 10, snapshot) == "demo/cache.py:\n    4│ class Cache:\n"
    assert rank_definitions(index.reader, seeds_from(snapshot, text="look at demo/app.py"))[0].qualified == "serve"


async def test_index_tools_without_an_index_say_what_to_do(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    toolbox = build_toolbox(config)
    outcome = await _call(config, toolbox, None, "workspace_symbol_search", query="x")
    assert outcome.result.is_error
    assert "workspace index is not available" in str(outcome.result.content)
    bad = await _call(config, toolbox, None, "workspace_symbol_search", query=3)
    assert bad.result.is_error


def test_index_tools_are_not_offered_when_the_index_is_off(tmp_path: Path) -> None:
    config = make_config(tmp_path, {"LYNKR_INDEX": "false"})
    assert "workspace_symbol_search" not in build_toolbox(config).registry


def test_generated_claude_md_goes_to_the_data_folder_and_leaves_the_users_alone(
    indexed: tuple[Config, IndexStore],
) -> None:
    config, store = indexed
    text = claude_md.render(IndexReader(store))
    assert "- Run: `python -m pytest`" in text and "- Frameworks: Flask, pytest" in text
    assert claude_md.write_generated(config.data_dir, text)
    assert not claude_md.write_generated(config.data_dir, text)  # unchanged: not rewritten
    assert (config.data_dir / "CLAUDE.md").read_text() == text

    own = config.workspace_root / "CLAUDE.md"
    own.write_text("# Mine\nKeep this.\n")
    assert claude_md.manage_section(config.workspace_root, text)
    managed = own.read_text()
    assert managed.startswith("# Mine\nKeep this.\n\n" + claude_md.BEGIN + "\n")
    assert managed.endswith(claude_md.END + "\n")
    own.write_text(managed + "Written after the section.\n")
    assert claude_md.manage_section(config.workspace_root, text.replace("Flask", "Quart"))
    updated = own.read_text()
    assert "Quart" in updated and "Flask" not in updated
    assert updated.startswith("# Mine\nKeep this.\n") and updated.endswith("Written after the section.\n")
    own.write_text("# Mine\n" + claude_md.BEGIN + "\nhalf a section, no end marker\n")
    assert not claude_md.manage_section(config.workspace_root, text)
    assert own.read_text() == "# Mine\n" + claude_md.BEGIN + "\nhalf a section, no end marker\n"


def test_cli_rebuild_then_search_refs_map_and_status(tmp_path: Path) -> None:
    env = cli_env(tmp_path)
    config = make_config(tmp_path)
    _workspace(config)
    rebuilt = lynkr(tmp_path, "index", "rebuild", "--json", env=env)
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert json.loads(rebuilt.stdout)["parsed"] == 5
    found = lynkr(tmp_path, "index", "search", "open_store", "--json", env=env)
    assert [(r["path"], r["line"], r["kind"]) for r in json.loads(found.stdout)] == [("demo/store.py", 6, "function")]
    refs = lynkr(tmp_path, "index", "refs", "Cache", env=env)
    assert refs.stdout.splitlines() == ["demo/app.py:5:12  call in serve", "tests/test_cache.py:5:12  call in test_get"]
    mapped = lynkr(tmp_path, "index", "map", "Store", "--tokens", "10", env=env)
    assert mapped.stdout == "demo/store.py:\n    1│ class Store:\n"
    status = lynkr(tmp_path, "index", "status", env=env)
    assert "files      5 indexed" in status.stdout and "command: python -m pytest" in status.stdout


def test_cli_search_without_an_index_says_how_to_get_one(tmp_path: Path) -> None:
    ran = lynkr(tmp_path, "index", "search", "x")
    assert ran.returncode != 0
    assert "no index in" in ran.stderr


async def test_test_run_falls_back_to_the_command_the_index_detected(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    (config.workspace_root / "Gemfile").write_text('source "https://rubygems.org"\ngem "rspec"\n')
    store = IndexStore.open(config.data_dir)
    try:
        IndexWriter(store, config.workspace_root.resolve(), max_file_bytes=config.index.max_file_bytes).run()
        index = IndexHandle(reader=IndexReader(store))
        assert index.detected_test_command() == "bundle exec rspec"
        outcome = await _call(config, build_toolbox(config), index, "workspace_test_run")
        # No bundler here: the command runs and fails, which shows it was chosen (not "no test command").
        assert "no test command" not in str(outcome.result.content)
        assert "bundle exec rspec" in str(outcome.result.content)
    finally:
        store.close()
