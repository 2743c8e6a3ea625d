"""The indexer in a running daemon: a real git workspace is edited, extended, pruned, renamed and switched
between branches, and every change shows in ``workspace_symbol_search`` answers that a fake upstream asks for
through ``/v1/messages``.  A restart over an unchanged workspace parses nothing."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pygit2
import pytest
import trio

from lynkr.config import Config
from lynkr.index.events import IndexFileUpdated, IndexRunFinished, IndexRunStarted
from tests.conftest import init_git_repo, make_config, recorded_events, running_lynkr
from tests.fakes import FakeUpstream, Reply, serve_fake

SIGNATURE = pygit2.Signature("lynkr tests", "tests@lynkr.invalid")
WAIT_S = 20


def _env(upstream: str, workers: str = "1") -> dict[str, str]:
    return {
        "LYNKR_INDEX_WORKERS": workers,
        "MODEL_PROVIDER": "openai",
        "OPENAI_ENDPOINT": f"{upstream}/v1/chat/completions",
        "OPENAI_API_KEY": "sk-upstream-secret-1234",
        "OPENAI_MODEL": "gpt-test",
        "TOOL_EXECUTION_MODE": "server",
    }


class Asker:
    """Asks the daemon, through /v1/messages, to have the model call workspace_symbol_search."""

    def __init__(self, fake: FakeUpstream, client: httpx.AsyncClient) -> None:
        self.fake = fake
        self.client = client
        self.calls = 0

    async def search(self, query: str) -> str:
        self.calls += 1
        self.fake.push(
            Reply.tool_call(name="workspace_symbol_search", arguments={"query": query, "exact": True},
                            id=f"call_{self.calls}"),
            Reply.text("noted"),
        )
        request = {"model": "claude-sonnet-5-5", "max_tokens": 100, "stream": False,
                   "messages": [{"role": "user", "content": f"where is {query}?"}]}
        response = await self.client.post("/v1/messages", json=request)
        assert response.status_code == 200, response.text
        messages: list[dict[str, Any]] = self.fake.model_calls[-1].request.json["messages"]
        [result] = [m["content"] for m in messages if m.get("role") == "tool"]
        assert isinstance(result, str)
        return result

    async def wait_until(self, query: str, *, present: str | None) -> str:
        """Ask until the answer lists ``present`` (a path:line) or, with None, lists nothing."""
        with trio.fail_after(WAIT_S):
            while True:
                answer = await self.search(query)
                if present is None and answer.startswith("No definitions"):
                    return answer
                if present is not None and present in answer:
                    return answer
                await trio.sleep(0.05)


def _read(path: Path) -> str:
    return path.read_text() if path.exists() else ""


def _gauge(response: httpx.Response, name: str) -> float:
    [line] = [line for line in response.text.splitlines() if line.startswith(name + " ")]
    return float(line.split()[1])


@asynccontextmanager
async def _daemon(config: Config, fake: FakeUpstream) -> AsyncIterator[Asker]:
    async with running_lynkr(config) as lynkr, httpx.AsyncClient(base_url=lynkr.base_url, timeout=30) as client:
        yield Asker(fake, client)


def _commit(repo: pygit2.Repository, message: str) -> None:
    repo.index.add_all()
    repo.index.write()
    repo.create_commit("HEAD", SIGNATURE, SIGNATURE, message, repo.index.write_tree(), [repo.head.target])


@pytest.mark.parametrize("workers", ["1", "2"])  # 2: the 300-file branch switch is parsed in worker processes
async def test_live_index_follows_edits_creates_deletes_renames_and_branch_switches(
    tmp_path: Path, workers: str
) -> None:
    fake = FakeUpstream()
    async with serve_fake(fake) as upstream:
        config = make_config(tmp_path, _env(upstream, workers))
        workspace = config.workspace_root
        repo = init_git_repo(workspace)
        (workspace / "pkg").mkdir()
        (workspace / "pkg" / "alpha.py").write_text("def alpha_one():\n    return 1\n")
        (workspace / "CLAUDE.md").write_text("# The user's own notes\n")
        _commit(repo, "alpha")
        async with _daemon(config, fake) as ask:
            await ask.wait_until("alpha_one", present="pkg/alpha.py:1:1")

            (workspace / "pkg" / "alpha.py").write_text("\n\ndef alpha_two():\n    return 2\n")
            await ask.wait_until("alpha_two", present="pkg/alpha.py:3:1")
            await ask.wait_until("alpha_one", present=None)

            (workspace / "pkg" / "beta.ts").write_text("export class BetaThing {}\n")
            await ask.wait_until("BetaThing", present="pkg/beta.ts:1:8")
            (workspace / "pkg" / "beta.ts").unlink()
            await ask.wait_until("BetaThing", present=None)

            (workspace / "pkg" / "alpha.py").rename(workspace / "pkg" / "gamma.py")
            answer = await ask.wait_until("alpha_two", present="pkg/gamma.py:3:1")
            assert "pkg/alpha.py" not in answer

            # A branch with many files; switching to it and back is one batch each way.
            _commit(repo, "gamma")
            main = repo.head.shorthand
            repo.branches.local.create("feature", repo.head.peel(pygit2.Commit))
            repo.checkout("refs/heads/feature")
            for number in range(300):
                (workspace / "pkg" / f"feature_{number}.go").write_text(
                    f"package pkg\n\nfunc FeatureNumber{number}() int {{ return {number} }}\n"
                )
            _commit(repo, "feature")
            await ask.wait_until("FeatureNumber299", present="pkg/feature_299.go:3:1")
            repo.checkout(f"refs/heads/{main}")
            await ask.wait_until("FeatureNumber299", present=None)
            await ask.wait_until("FeatureNumber0", present=None)
            repo.checkout("refs/heads/feature")
            await ask.wait_until("FeatureNumber0", present="pkg/feature_0.go:3:1")
            await ask.wait_until("alpha_two", present="pkg/gamma.py:3:1")
            # The generated guide lands in the data folder once changes pause; the user's file is untouched.
            with trio.fail_after(WAIT_S):
                while "- go: 300 files" not in _read(config.data_dir / "CLAUDE.md"):
                    await trio.sleep(0.1)
            assert "- `pkg/`: 301 files" in _read(config.data_dir / "CLAUDE.md")
            assert (workspace / "CLAUDE.md").read_text() == "# The user's own notes\n"

    events = recorded_events(config.data_dir)
    started = [e for e in events if isinstance(e, IndexRunStarted)]
    finished = [e for e in events if isinstance(e, IndexRunFinished)]
    assert [e.reason for e in started] == ["start"] and [e.reason for e in finished] == ["start"]
    assert finished[0].counts["parsed"] == 3  # README.md and CLAUDE.md (file-level facts), pkg/alpha.py
    updated = [e for e in events if isinstance(e, IndexFileUpdated)]
    assert {"pkg/alpha.py", "pkg/beta.ts", "pkg/gamma.py", "pkg/feature_0.go"} <= {e.path for e in updated}
    assert all(len(e.content_hash) == 32 for e in updated)

    # A restart over the unchanged workspace parses nothing and still answers.
    fake = FakeUpstream()
    async with serve_fake(fake) as upstream:
        config = make_config(tmp_path, _env(upstream))
        async with _daemon(config, fake) as ask:
            await ask.wait_until("FeatureNumber7", present="pkg/feature_7.go:3:1")
            with trio.fail_after(WAIT_S):
                while _gauge(await ask.client.get("/metrics"), "lynkr_index_runs_finished_total") < 2:
                    await trio.sleep(0.05)
    restarted = [e for e in recorded_events(config.data_dir) if isinstance(e, IndexRunFinished)][-1]
    assert restarted.counts["parsed"] == 0
    assert restarted.counts["unchanged"] == 303


async def test_repo_map_goes_into_requests_when_configured_and_stays_byte_stable(tmp_path: Path) -> None:
    fake = FakeUpstream()
    async with serve_fake(fake) as upstream:
        env = {**_env(upstream), "TOOL_EXECUTION_MODE": "client", "LYNKR_REPO_MAP_IN_REQUESTS": "true"}
        config = make_config(tmp_path, env)
        (config.workspace_root / "cache.py").write_text("class Cache:\n    def get(self, key):\n        pass\n")
        (config.workspace_root / "other.py").write_text("def unrelated():\n    pass\n")
        async with _daemon(config, fake) as ask:
            with trio.fail_after(WAIT_S):
                while _gauge(await ask.client.get("/metrics"), "lynkr_index_runs_finished_total") < 1:
                    await trio.sleep(0.05)
            systems = []
            for later in ("and then?", "something about unrelated() now"):
                fake.push(Reply.text("ok"))
                messages = [{"role": "user", "content": "how does Cache.get work?"},
                            {"role": "assistant", "content": "let me see"}, {"role": "user", "content": later}]
                request = {"model": "claude-sonnet-5-5", "max_tokens": 50, "system": "You are terse.",
                           "messages": messages}
                response = await ask.client.post("/v1/messages", json=request)
                assert response.status_code == 200, response.text
                sent = fake.model_calls[-1].request.json["messages"]
                systems.append([m["content"] for m in sent if m["role"] == "system"])
    text = json.dumps(systems[0])
    assert "You are terse." in text and "class Cache:" in text and "def get(self, key):" in text
    assert systems[1] == systems[0]  # seeded by the first message: later turns keep the same bytes
