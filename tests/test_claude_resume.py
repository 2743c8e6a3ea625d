"""`claude --resume ID` and `claude --continue` continue the same lynkr session, with the real CLI.

What the CLI does (2.1.197 and the latest): a resumed or continued run sends the session id it resumes, in the
`x-claude-code-session-id` header and in `metadata.user_id`, with the earlier turns at the front of its
messages.  lynkr keys sessions on that id, so the turns land in the one session; no linking by content is
needed.  (`--fork-session` asks for a new session id on purpose, and gets its own lynkr session.)
"""

from __future__ import annotations

from pathlib import Path

import pytest

from lynkr.events.catalog import RequestReceived
from lynkr.sessions.listing import load_sessions, newest_first
from tests.conftest import make_config, recorded, running_lynkr
from tests.fakes import FakeUpstream, Reply, serve_fake
from tests.fakes.claude_cli import run_claude

pytestmark = pytest.mark.cli


def openai_env(upstream: str) -> dict[str, str]:
    return {
        "MODEL_PROVIDER": "openai",
        "OPENAI_ENDPOINT": f"{upstream}/v1/chat/completions",
        "OPENAI_API_KEY": "sk-upstream-openai",
        "OPENAI_MODEL": "gpt-4o",
    }


async def test_resume_and_continue_stay_in_one_session(claude_exe: Path, claude_workdir: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"  # one HOME for the three runs: the CLI keeps its transcripts there
    home.mkdir()
    fake = FakeUpstream()
    fake.push(Reply.text("first answer"), Reply.text("second answer"), Reply.text("third answer"),
              Reply.text("forked answer"))
    async with serve_fake(fake) as upstream:
        config = make_config(tmp_path, openai_env(upstream))
        async with running_lynkr(config) as lynkr:
            async def claude(prompt: str, *args: str) -> str:
                result = await run_claude(claude_exe, base_url=lynkr.base_url, prompt=prompt, cwd=claude_workdir,
                                          extra_env={"HOME": str(home)}, args=args)
                assert not result.is_error, result.stdout + result.stderr
                session_id: str = result.json["session_id"]
                return session_id

            first = await claude("first prompt")
            resumed = await claude("second prompt", "--resume", first)
            continued = await claude("third prompt", "--continue")
            forked = await claude("fork prompt", "--resume", first, "--fork-session")

    assert resumed == continued == first and forked != first
    requests = [(r.stream, r.event.request()) for r in recorded(config.data_dir) if isinstance(r.event, RequestReceived)]
    main = [request for stream, request in requests if stream == first]
    assert len(main) == 3
    # Each later run carried the earlier turns, and lynkr kept them in the same session.
    texts = [str(request["messages"]) for request in main]
    assert "first answer" in texts[1] and "second answer" in texts[2]
    kinds = {name: provider.kind for name, provider in config.providers.items()}
    listed = {summary.session_id: summary for summary in newest_first(load_sessions(config.data_dir), kinds)}
    assert listed[first].turns == 3 and listed[forked].turns == 1
    assert listed[first].models == ("gpt-4o",)
