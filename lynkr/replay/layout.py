"""A gathered session as facts (plain data, what ``--json`` prints) and as lines a person reads.

The text is rendered from the facts and from nothing else, so both say the same.  What a person reads first:
the user's own words (the CLI's ``<system-reminder>`` blocks left out), a tool result's gist (tool, error or
not, exit status where lynkr ran it, first line, size) instead of the whole output, and durations and sizes
rounded the way people say them.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterable, Mapping
from typing import Any

from lynkr.events.transcript import MissingBlob
from lynkr.replay.gather import SessionLog, TurnLog
from lynkr.tools.events import ToolRan, ToolRefused
from lynkr.wire.content import exit_code, result_text, user_words

PREVIEW = 200  # characters of a text shown without --full
FIRST_LINE = 120  # characters of a tool result's first line



# -- units a person reads ----------------------------------------------------------------------------------------


def duration(ms: float | None) -> str | None:
    """``0.4 ms``, ``340 ms``, ``1.2 s``, ``12 s``, ``3 min``, ``1.5 h``: two or three figures, never more."""
    if ms is None:
        return None
    seconds = ms / 1000
    if ms < 9.95:
        return f"{ms:.1f} ms"
    if ms < 999.5:
        return f"{ms:.0f} ms"
    if seconds < 9.95:
        return f"{seconds:.1f} s"
    if seconds < 89.5:
        return f"{seconds:.0f} s"
    if seconds < 89.5 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def size(count: int) -> str:
    """``812 B``, ``1.2 kB``, ``34 kB``, ``3.4 MB``."""
    if count < 1000:
        return f"{count} B"
    for unit, scale in (("kB", 1e3), ("MB", 1e6), ("GB", 1e9)):
        value = count / scale
        if value < 1000 or unit == "GB":
            return f"{value:.1f} {unit}" if value < 10 else f"{value:.0f} {unit}"
    raise AssertionError("unreachable: GB ends the loop")


def clock(time_ns: int) -> str:
    moment = datetime.datetime.fromtimestamp(time_ns / 1e9, tz=datetime.timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


# -- what a request says ------------------------------------------------------------------------------------------


def result_gist(block: Mapping[str, Any], tool: str | None) -> dict[str, Any]:
    """Tool, error or not, exit status (where the result opens with it), first line and size of a ``tool_result``."""
    text = result_text(block.get("content"))
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    code = exit_code(text)
    if code is not None:
        lines = lines[1:]
    first = lines[0] if lines else ""
    count = len(text.encode())
    return {
        "tool": tool,
        "tool_use_id": str(block.get("tool_use_id", "")),
        "is_error": bool(block.get("is_error", False)),
        "exit_code": code,
        "first_line": first[:FIRST_LINE] + ("…" if len(first) > FIRST_LINE else ""),
        "bytes": count,
        "size": size(count),
    }


def _tool_names(messages: Iterable[object]) -> dict[str, str]:
    names: dict[str, str] = {}
    for message in messages:
        content = message.get("content") if isinstance(message, dict) else None
        for block in content if isinstance(content, list) else ():
            if isinstance(block, dict) and block.get("type") == "tool_use":
                names[str(block.get("id"))] = str(block.get("name"))
    return names


def _request_facts(turn: TurnLog) -> dict[str, Any] | None:
    received = turn.request
    if received is None:
        return None
    facts: dict[str, Any] = {
        "model": received.model,
        "stream": received.stream,
        "messages": received.messages,
        "tools": len(received.tools),
    }
    try:
        body = received.request()
    except (MissingBlob, ValueError) as error:
        facts["unreadable"] = f"the request body cannot be rebuilt from the log: {error}"
        facts["user"] = received.last_user_text
        facts["tool_results"] = []
        return facts
    messages = body.get("messages")
    if not isinstance(messages, list):
        messages = []
    last_user = next((m for m in reversed(messages) if isinstance(m, dict) and m.get("role") == "user"), None)
    content = last_user.get("content") if last_user is not None else None
    names = _tool_names(messages)
    facts["user"] = user_words(content)
    facts["tool_results"] = [
        result_gist(block, names.get(str(block.get("tool_use_id"))))
        for block in (content if isinstance(content, list) else ())
        if isinstance(block, dict) and block.get("type") == "tool_result"
    ]
    return facts


# -- the facts of a turn ------------------------------------------------------------------------------------------


def session_facts(session: SessionLog) -> dict[str, Any]:
    turns = [turn_facts(number, turn) for number, turn in enumerate(session.turns, start=1)]
    return {
        "session_id": session.session_id,
        "turns": turns,
        "cache_hits": sum(1 for turn in turns if turn["cache_hit"] is not None),
        "tool_runs": sum(len(turn["tool_runs"]) for turn in turns),
    }


def turn_facts(number: int, turn: TurnLog) -> dict[str, Any]:
    attempts = []
    # An agent loop's rounds each go upstream afresh; an attempt belongs to the round whose answer follows it.
    completed_at = [seq for seq, _ in turn.completions]
    for seq, attempt, answer in turn.attempts:
        attempts.append(
            {
                "round": 1 + sum(1 for done in completed_at if done < seq) if turn.rounds else None,
                "provider": attempt.provider,
                "attempt": attempt.attempt,
                "status": attempt.status,
                "latency_ms": round(attempt.latency_ms, 3),
                "latency": duration(attempt.latency_ms),
                "will_retry": attempt.will_retry,
                "error": attempt.error,
                "recorded": None
                if answer is None
                else {"wire": answer.wire, "kind": answer.kind, "streamed": answer.streamed,
                      "bytes": answer.size, "size": size(answer.size), "reads": len(answer.read_sizes),
                      "client_sse": bool(answer.sent or answer.sent_digest)},
            }
        )
    response = turn.response
    return {
        "turn": number,
        "request_id": turn.request_id,
        "seq": turn.seq,
        "time": clock(turn.time_ns),
        "request": _request_facts(turn),
        "cache_hit": None if turn.cache_hit is None else {"key": turn.cache_hit.key},
        "attempts": attempts,
        "rounds": [
            {"step": r.step, "stop_reason": r.stop_reason, "tools": list(r.tools), "client_tools": list(r.client_tools)}
            for r in turn.rounds
        ],
        "tool_runs": [_tool_run_facts(run, turn) for run in turn.tool_runs],
        "loop": None
        if turn.loop is None
        else {"reason": turn.loop.reason, "steps": turn.loop.steps, "tool_calls": turn.loop.tool_calls},
        "response": None if response is None else _response_facts(response.provider, response.latency_ms,
                                                                   response.message),
        "failure": None
        if turn.failure is None
        else {"status": turn.failure.status, "type": turn.failure.error_type, "message": turn.failure.message},
    }


def _tool_run_facts(run: ToolRan | ToolRefused, turn: TurnLog) -> dict[str, Any]:
    if isinstance(run, ToolRefused):
        return {"tool": run.tool, "tool_use_id": run.tool_use_id, "refused": run.reason, "rule": run.rule}
    result = turn.tool_results.get(run.tool_use_id)
    gist = result_gist(result, run.tool) if result is not None else None
    return {
        "tool": run.tool,
        "tool_use_id": run.tool_use_id,
        "exit_code": run.exit_code,
        "is_error": run.is_error,
        "duration_ms": round(run.duration_ms, 3),
        "duration": duration(run.duration_ms),
        "bytes": run.result_bytes,
        "size": size(run.result_bytes),
        "first_line": None if gist is None else gist["first_line"],
    }


def _response_facts(provider: str, latency_ms: float, message: Mapping[str, Any]) -> dict[str, Any]:
    usage = message.get("usage") or {}
    return {
        "provider": provider,
        "latency_ms": round(latency_ms, 3),
        "latency": duration(latency_ms),
        "stop_reason": message.get("stop_reason"),
        "input_tokens": usage.get("input_tokens"),
        "output_tokens": usage.get("output_tokens"),
        "content": list(message.get("content") or []),
    }


# -- lines --------------------------------------------------------------------------------------------------------


def render(facts: Mapping[str, Any], *, full: bool) -> str:
    turns = facts["turns"]
    lines = [
        f"session {facts['session_id']}: {len(turns)} turns, {facts['cache_hits']} cache hits, "
        f"{facts['tool_runs']} tool runs"
    ]
    for turn in turns:
        lines.append("")
        lines.extend(_turn_lines(turn, full))
    return "\n".join(lines)


def _turn_lines(turn: Mapping[str, Any], full: bool) -> list[str]:
    lines = [f"── turn {turn['turn']}  {turn['time']}  {turn['request_id']}"]
    request = turn["request"]
    if request is not None:
        lines.append(
            f"   request   {request['model']}, {request['messages']} messages, {request['tools']} tools"
            f"{', streaming' if request['stream'] else ''}"
        )
        if request.get("unreadable"):
            lines.append(f"   (note)    {request['unreadable']}")
        if request["user"]:
            lines.append(f"   user      {_preview(request['user'], full)}")
        for gist in request["tool_results"]:
            lines.append(f"   result    {_gist_line(gist)}")
    if turn["cache_hit"] is not None:
        lines.append(f"   cache     hit, key {turn['cache_hit']['key'][:16]}…")
    for attempt in turn["attempts"]:
        status = attempt["status"] if attempt["status"] is not None else "no answer"
        round_ = f" (round {attempt['round']})" if attempt["round"] is not None else ""
        line = f"   upstream  {attempt['provider']} #{attempt['attempt']}{round_}: {status} in {attempt['latency']}"
        if attempt["error"]:
            line += f", {_preview(attempt['error'], full)}"
        if attempt["will_retry"]:
            line += ", retrying"
        recorded = attempt["recorded"]
        if recorded is not None:
            form = "stream" if recorded["streamed"] else "JSON"
            line += f"  [{recorded['wire']} {form}, {recorded['size']} recorded]"
        lines.append(line)
    for run in turn["tool_runs"]:
        lines.append(f"   tool run  {_run_line(run, full)}")
    for round_ in turn["rounds"]:
        ran = ", ".join(round_["tools"]) or "none"
        lines.append(f"   round     {round_['step']}: stop {round_['stop_reason']}, lynkr ran {ran}"
                     + (f", for the client: {', '.join(round_['client_tools'])}" if round_["client_tools"] else ""))
    if turn["loop"] is not None:
        loop = turn["loop"]
        lines.append(f"   loop      ended {loop['reason']} after {loop['steps']} rounds, {loop['tool_calls']} tool calls")
    response = turn["response"]
    if response is not None:
        lines.append(
            f"   response  from {response['provider']} in {response['latency']}, stop {response['stop_reason']}, "
            f"tokens in {response['input_tokens']} out {response['output_tokens']}"
        )
        lines.extend(f"   {_block_line(block, full)}" for block in response["content"])
    if turn["failure"] is not None:
        failure = turn["failure"]
        lines.append(f"   failed    {failure['status']} {failure['type']}: {_preview(failure['message'], full)}")
    if response is None and turn["failure"] is None:
        lines.append("   (no answer recorded)")
    return lines


def _gist_line(gist: Mapping[str, Any]) -> str:
    outcome = "error" if gist["is_error"] else "ok"
    exit_code = f", exit {gist['exit_code']}" if gist["exit_code"] is not None else ""
    first = f": {gist['first_line']}" if gist["first_line"] else ""
    return f"{gist['tool'] or 'tool'} {outcome}{exit_code}, {gist['size']}{first}"


def _run_line(run: Mapping[str, Any], full: bool) -> str:
    if "refused" in run:
        return f"{run['tool']} refused by {run['rule']}: {_preview(run['refused'], full)}"
    outcome = "error" if run["is_error"] else "ok"
    exit_code = f", exit {run['exit_code']}" if run["exit_code"] is not None else ""
    first = f": {run['first_line']}" if run["first_line"] else ""
    return f"{run['tool']} {outcome}{exit_code} in {run['duration']}, {run['size']}{first}"


def _block_line(block: Mapping[str, Any], full: bool) -> str:
    kind = block.get("type")
    if kind == "text":
        return f"text      {_preview(str(block.get('text', '')), full)}"
    if kind == "tool_use":
        arguments = json.dumps(block.get("input", {}), ensure_ascii=False)
        return f"tool_use  {block.get('name')} {_preview(arguments, full)}  [{block.get('id')}]"
    if kind == "thinking":
        return f"thinking  {_preview(str(block.get('thinking', '')), full)}"
    return f"{kind}"


def _preview(text: str, full: bool) -> str:
    flat = text.replace("\n", "⏎ ")
    if full or len(flat) <= PREVIEW:
        return flat
    return flat[:PREVIEW] + f"… ({len(text)} chars)"
