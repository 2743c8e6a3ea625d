"""Tool dispatch and server-loop step costs, side by side in one run.

    /work/main/.venv/bin/python bench/tools.py --results bench/RESULTS.md      # full run, ~1 minute
    /work/main/.venv/bin/python bench/tools.py --quick                         # a few seconds

1. Tool dispatch overhead.  ``fs_read`` of a small file (20 lines) end to end through the tool worker actor
   (``ask`` -> ``RunTool`` -> ``run_call`` -> the tool events recorded through the recorder into a real LMDB log ->
   state folded -> answer), against the same read done directly (``run_call`` on the same toolbox and context,
   no actor hop, nothing recorded).  Calls alternate between the two paths so drift hits both alike.
   Added = worker percentile minus direct percentile.  Target: p50 <= 0.5 ms, p99 <= 2 ms added.

2. One server-loop step beyond the upstream call.  A real daemon in server mode (``python -m lynkr``, a process
   of its own) in front of a scripted fake upstream (OpenAI wire, ``tests/fakes``, in this process): each turn the
   model first calls ``fs_read``, then answers.  The step's cost is the gap, seen by the fake, between the end
   of its first response and the arrival of the next request: in that gap lynkr finishes the round's stream,
   runs the tool through the worker, builds the next request and sends it.  Against it: the same gap for a
   plain httpx client that sends the second request as soon as the first response ends (the same bodies), which
   is what any client, lynkr included, pays to send a request.  Added = lynkr's gap minus the client's.
   Target: <= 2 ms.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import trio

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from lynkr.actors import recorder as recorder_actor  # noqa: E402
from lynkr.actors import tools as tools_actor  # noqa: E402
from lynkr.actors.messages import RunTool  # noqa: E402
from lynkr.actors.recorder import Append, Hub, Recorder  # noqa: E402
from lynkr.actors.runtime import Mailbox, ReplyTo, ask  # noqa: E402
from lynkr.datadir import open_store  # noqa: E402
from lynkr.events.scrub import Scrubber  # noqa: E402
from lynkr.tools.runner import Outcome, run_call  # noqa: E402
from lynkr.tools.toolbox import build_toolbox, tool_context  # noqa: E402
from lynkr.tools.events import ToolRan  # noqa: E402
from tests.conftest import make_config, recorded_events  # noqa: E402
from tests.fakes import FakeUpstream, Reply, serve_fake  # noqa: E402

SMALL_FILE = "".join(f"line {n} of a small file\n" for n in range(1, 21))
REQUEST = {
    "model": "claude-sonnet-5-5",
    "max_tokens": 100,
    "stream": True,
    "messages": [{"role": "user", "content": "read small.txt"}],
}


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def bench_dispatch(root: Path, calls: int) -> dict[str, float]:
    config = make_config(root, {"TOOL_EXECUTION_MODE": "server"})
    (config.workspace_root / "small.txt").write_text(SMALL_FILE)
    store = open_store(config.data_dir, map_size=config.log_map_size_bytes)
    toolbox = build_toolbox(config)
    context = tool_context(config, toolbox, session_id="bench")
    arguments = {"path": "small.txt"}
    direct: list[float] = []
    through_worker: list[float] = []
    try:
        recorder_mailbox: Mailbox[Append] = Mailbox(1024)
        recorder = Recorder(recorder_mailbox, Hub())
        tools_mailbox: Mailbox[RunTool] = Mailbox(64)
        providers: Mailbox[Any] = Mailbox(4)
        async with trio.open_nursery() as nursery:
            await nursery.start(
                lambda task_status: recorder_actor.run(
                    store, recorder_mailbox.receiver(), scrubber=Scrubber(()), hub=recorder.hub,
                    commit_delay_s=config.recorder_commit_delay_s, task_status=task_status,
                )
            )
            await nursery.start(
                lambda task_status: tools_actor.run(
                    config, tools_mailbox.receiver(), store=store, recorder=recorder, providers=providers,
                    task_status=task_status,
                )
            )

            def message(reply_to: ReplyTo[Outcome]) -> RunTool:
                return RunTool(session_id="bench", request_id="req_bench", model="m", tool_use_id="toolu_1",
                               name="fs_read", arguments=arguments, reply_to=reply_to)

            async def via_worker() -> Outcome:
                return await ask(tools_mailbox, message)

            async def directly() -> Outcome:
                return await run_call(name="fs_read", tool_use_id="toolu_1", arguments=arguments, toolbox=toolbox,
                                      context=context)

            paths: list[tuple[Callable[[], Awaitable[Outcome]], list[float]]] = [
                (directly, direct), (via_worker, through_worker)
            ]
            for _ in range(min(200, calls)):  # warm-up
                for call, _samples in paths:
                    await call()
            for _ in range(calls):
                for call, samples in paths:
                    started = time.perf_counter()
                    outcome = await call()
                    samples.append((time.perf_counter() - started) * 1000)
                    assert not outcome.result.is_error, outcome.result.content
            tools_mailbox.close()
            recorder_mailbox.close()
            nursery.cancel_scope.cancel()
    finally:
        store.close()
    return {
        "direct_p50": percentile(direct, 0.5),
        "direct_p99": percentile(direct, 0.99),
        "worker_p50": percentile(through_worker, 0.5),
        "worker_p99": percentile(through_worker, 0.99),
        "added_p50": percentile(through_worker, 0.5) - percentile(direct, 0.5),
        "added_p99": percentile(through_worker, 0.99) - percentile(direct, 0.99),
        "calls": calls,
    }


async def bench_step(root: Path, turns: int) -> dict[str, float]:
    fake = FakeUpstream()
    lynkr_gaps: list[float] = []
    client_gaps: list[float] = []
    turn_ms: list[float] = []
    workspace = root / "workspace"
    workspace.mkdir()
    (workspace / "small.txt").write_text(SMALL_FILE)
    async with serve_fake(fake) as upstream:
        env = {
            **{name: value for name, value in os.environ.items() if not name.startswith(("LYNKR_", "OPENAI_"))},
            "PYTHONPATH": str(REPO),
            "PORT": "0",
            "LYNKR_HOST": "127.0.0.1",
            "WORKSPACE_ROOT": str(workspace),
            "LYNKR_DATA_DIR": str(root / "data"),
            "MODEL_PROVIDER": "openai",
            "OPENAI_ENDPOINT": f"{upstream}/v1/chat/completions",
            "OPENAI_API_KEY": "sk-bench-upstream-0123456789",
            "OPENAI_MODEL": "gpt-bench",
            "TOOL_EXECUTION_MODE": "server",
        }
        stdout_path = root / "lynkr.out"
        with stdout_path.open("w") as stdout, (root / "lynkr.err").open("w") as stderr:
            # lynkr in a process of its own, as in use: the fake and the clients here do not share its trio loop.
            process = subprocess.Popen([sys.executable, "-m", "lynkr"], stdout=stdout, stderr=stderr, env=env,
                                       cwd=workspace)
        try:
            with trio.fail_after(30):
                while "export ANTHROPIC_API_KEY=" not in stdout_path.read_text():
                    if process.poll() is not None:
                        raise RuntimeError(f"lynkr exited: {(root / 'lynkr.err').read_text()}")
                    await trio.sleep(0.05)
            base_url = stdout_path.read_text().splitlines()[0].rsplit(" ", 1)[1]
            async with httpx.AsyncClient(base_url=base_url, timeout=30) as client, \
                    httpx.AsyncClient(timeout=30) as direct:
                for turn in range(turns + 20):
                    fake.push(Reply.tool_call(name="fs_read", arguments={"path": "small.txt"}, id=f"call_{turn}"),
                              Reply.text("The file has 20 lines."))
                    started = time.perf_counter()
                    response = await client.post("/v1/messages", json=REQUEST)
                    elapsed = (time.perf_counter() - started) * 1000
                    assert response.status_code == 200, response.text
                    first, second = fake.model_calls[-2:]
                    assert first.finished_at is not None
                    # The same two requests from a plain client, the second sent as soon as the first has ended.
                    fake.push(Reply.tool_call(name="fs_read", arguments={"path": "small.txt"}, id=f"call_{turn}"),
                              Reply.text("The file has 20 lines."))
                    url = f"{upstream}/v1/chat/completions"
                    headers = {"content-type": "application/json"}
                    await direct.post(url, content=first.request.body, headers=headers)
                    await direct.post(url, content=second.request.body, headers=headers)
                    direct_first, direct_second = fake.model_calls[-2:]
                    assert direct_first.finished_at is not None
                    if turn < 20:
                        continue  # warm-up
                    lynkr_gaps.append((second.request.received_at - first.finished_at) * 1000)
                    client_gaps.append((direct_second.request.received_at - direct_first.finished_at) * 1000)
                    turn_ms.append(elapsed)
        finally:
            process.terminate()
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(process.wait)
    # The tool's own run (ToolRan.duration_ms: resolve, validate, judge, read in a worker thread) is the tool's
    # cost, not the loop's: what is left of the gap is the loop's own work.
    durations = [e.duration_ms for e in recorded_events(root / "data") if isinstance(e, ToolRan)][20:]
    loop_only = [gap - duration for gap, duration in zip(lynkr_gaps, durations, strict=True)]
    return {
        "tool_p50": statistics.median(durations),
        "loop_only_p50": statistics.median(loop_only),
        "loop_added_p50": statistics.median(loop_only) - statistics.median(client_gaps),
        "loop_added_p10": percentile(loop_only, 0.1) - percentile(client_gaps, 0.1),
        "lynkr_gap_p10": percentile(lynkr_gaps, 0.1),
        "client_gap_p10": percentile(client_gaps, 0.1),
        "tool_p10": percentile(durations, 0.1),
        "lynkr_gap_p50": statistics.median(lynkr_gaps),
        "lynkr_gap_p99": percentile(lynkr_gaps, 0.99),
        "client_gap_p50": statistics.median(client_gaps),
        "client_gap_p99": percentile(client_gaps, 0.99),
        "added_p50": statistics.median(lynkr_gaps) - statistics.median(client_gaps),
        "turn_p50": statistics.median(turn_ms),
        "turns": turns,
    }


def report(dispatch: dict[str, float], step: dict[str, float], command: str) -> str:
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    load = os.getloadavg()
    lines = [
        "## Tool dispatch and server-loop step",
        "",
        f"`{command}` ({time.strftime('%Y-%m-%d')}, Python {platform.python_version()}, {os.cpu_count()} cores, "
        f"lynkr {commit}, 1-minute load average {load[0]:.2f} at the end). The dispatch figures run in one process "
        "with the recorder writing a real LMDB log; the loop step runs `python -m lynkr` as its own process against "
        "the fake upstream of `tests/fakes` (OpenAI wire) in the bench process, on loopback. "
        "See the docstring of `bench/tools.py` for what each figure measures.",
        "",
        f"### fs_read of a 20-line file ({dispatch['calls']:.0f} calls per path, alternating)",
        "",
        "| path | p50 ms | p99 ms |",
        "| --- | ---: | ---: |",
        f"| directly (`run_call`, no actor, nothing recorded) | {dispatch['direct_p50']:.3f} | "
        f"{dispatch['direct_p99']:.3f} |",
        f"| through the tool worker (ask -> run_call -> record -> fold -> answer) | {dispatch['worker_p50']:.3f} | "
        f"{dispatch['worker_p99']:.3f} |",
        f"| **added** (target p50 <= 0.5, p99 <= 2) | **{dispatch['added_p50']:.3f}** | "
        f"**{dispatch['added_p99']:.3f}** |",
        "",
        f"### One server-loop step (fs_read, then the final answer; {step['turns']:.0f} turns)",
        "",
        "| gap between the end of the first upstream response and the next request | p10 ms | p50 ms | p99 ms |",
        "| --- | ---: | ---: | ---: |",
        f"| lynkr: finish the round, run fs_read through the worker, build and send round 2 | "
        f"{step['lynkr_gap_p10']:.3f} | {step['lynkr_gap_p50']:.3f} | {step['lynkr_gap_p99']:.3f} |",
        f"| a plain httpx client sending the same second request at once | {step['client_gap_p10']:.3f} | "
        f"{step['client_gap_p50']:.3f} | {step['client_gap_p99']:.3f} |",
        f"| added by the step, the tool's own run included | | {step['added_p50']:.3f} | |",
        f"| of which the tool's own run (`tool.ran` duration: validate, judge, read in a thread) | "
        f"{step['tool_p10']:.3f} | {step['tool_p50']:.3f} | |",
        f"| **added by the loop itself** (gap minus the tool's run, minus the client's gap; target <= 2) | "
        f"**{step['loop_added_p10']:.3f}** | **{step['loop_added_p50']:.3f}** | |",
        "",
        f"A whole two-round turn as the client sees it: {step['turn_p50']:.2f} ms median.",
        "",
    ]
    return "\n".join(lines)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a short run")
    parser.add_argument("--results", type=Path, help="append the figures to this Markdown file")
    options = parser.parse_args()
    calls, turns = (300, 40) if options.quick else (3000, 300)
    with tempfile.TemporaryDirectory(prefix="lynkr-bench-tools-") as folder:
        root = Path(folder)
        (root / "dispatch").mkdir()
        (root / "step").mkdir()
        dispatch = await bench_dispatch(root / "dispatch", calls)
        step = await bench_step(root / "step", turns)
    command = "/work/main/.venv/bin/python bench/tools.py" + (" --quick" if options.quick else "") + (
        f" --results {options.results}" if options.results else "")
    text = report(dispatch, step, command)
    print(text)
    if options.results is not None:
        with options.results.open("a") as results:
            results.write("\n" + text)


if __name__ == "__main__":
    trio.run(main)
