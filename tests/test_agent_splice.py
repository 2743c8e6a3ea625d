"""Splicing the rounds the client never saw back into its next request."""

from __future__ import annotations

from typing import Any

from lynkr.agent.events import RoundsKept
from lynkr.agent.splice import SpliceTable, apply_splice_event, message_key, splice

ASKED = {"role": "user", "content": "do it"}
SERVER_CALL = {"type": "tool_use", "id": "s1", "name": "workspace_git_status", "input": {}}
CLIENT_CALL = {"type": "tool_use", "id": "c1", "name": "Bash", "input": {"command": "ls"}}
SERVER_RESULT = {"type": "tool_result", "tool_use_id": "s1", "content": "clean"}
CLIENT_RESULT = {"type": "tool_result", "tool_use_id": "c1", "content": "a.txt"}


Kept = tuple[object, list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]


def _table(*kept: Kept) -> SpliceTable:
    """A table of (the user message before, the client's copy, the canonical messages, lynkr's results)."""
    table = SpliceTable()
    for previous, client_copy, messages, results in kept:
        event = RoundsKept(session_id="s", request_id="r", key=message_key(previous, client_copy),
                           messages=messages, results=results)
        table = apply_splice_event(table, event)
    return table


def test_the_key_ignores_what_the_client_may_change_on_the_way_back() -> None:
    sent = [{"type": "thinking", "thinking": "hm", "signature": "sig"}, {"type": "text", "text": "hi"}, CLIENT_CALL]
    echoed = [{"type": "thinking", "thinking": "hm", "signature": ""}, {"type": "text", "text": ""},
              {"type": "text", "text": "hi"}, {**CLIENT_CALL, "cache_control": {"type": "ephemeral"}}]
    asked = [{"type": "tool_result", "tool_use_id": "c0", "content": "x", "cache_control": {"type": "ephemeral"}}]
    asked_again = [{"type": "tool_result", "tool_use_id": "c0", "content": [{"type": "text", "text": "x"}]}]
    assert message_key(asked, sent) == message_key(asked_again, echoed)
    assert message_key("do", "hi") == message_key([{"type": "text", "text": "do"}], [{"type": "text", "text": "hi"}])
    assert message_key("do", "hi") != message_key("do", "ho")


def test_the_same_answer_to_different_questions_has_different_keys() -> None:
    assert message_key("first question", "Done.") != message_key("second question", "Done.")


def test_nothing_known_changes_nothing_and_copies_nothing() -> None:
    messages = [ASKED, {"role": "assistant", "content": "hello"}]
    assert splice(messages, SpliceTable()) is None
    assert splice(messages, _table(("do it", [{"type": "text", "text": "other"}], [], []))) is None
    assert splice(messages, _table(("something else", "hello", [{"role": "assistant", "content": "x"}], []))) is None


def test_a_hybrid_round_gets_lynkrs_results_beside_the_clients_in_tool_use_order() -> None:
    canonical = {"role": "assistant", "content": [SERVER_CALL, CLIENT_CALL]}
    table = _table(("do it", [CLIENT_CALL], [canonical], [SERVER_RESULT]))
    client_next = {"role": "user", "content": [{**CLIENT_RESULT, "cache_control": {"type": "ephemeral"}},
                                               {"type": "text", "text": "more"}]}
    spliced = splice([ASKED, {"role": "assistant", "content": [CLIENT_CALL]}, client_next], table)
    assert spliced is not None
    assert spliced[0] == ASKED and spliced[1] == canonical
    assert [block.get("tool_use_id") for block in spliced[2]["content"]] == ["s1", "c1", None]
    assert spliced[2]["content"][2] == {"type": "text", "text": "more"}


def test_server_rounds_come_back_before_the_final_text_and_pending_results_join_a_plain_string_message() -> None:
    rounds = [
        {"role": "assistant", "content": [{"type": "text", "text": "Looking."}, SERVER_CALL]},
        {"role": "user", "content": [SERVER_RESULT]},
        {"role": "assistant", "content": [{"type": "text", "text": "Done."}, {**SERVER_CALL, "id": "s2"}]},
    ]
    client_copy = [{"type": "text", "text": "Looking."}, {"type": "text", "text": "Done."}]
    table = _table(("do it", client_copy, rounds, [{**SERVER_RESULT, "tool_use_id": "s2"}]))
    spliced = splice([ASKED, {"role": "assistant", "content": client_copy}, {"role": "user", "content": "continue"}],
                     table)
    assert spliced is not None
    assert spliced[1:4] == rounds
    assert spliced[4] == {"role": "user", "content": [{**SERVER_RESULT, "tool_use_id": "s2"},
                                                      {"type": "text", "text": "continue"}]}


def test_every_earlier_turn_is_spliced_and_a_trailing_assistant_gets_its_results_in_a_new_user_message() -> None:
    first = [{"role": "assistant", "content": [SERVER_CALL]}, {"role": "user", "content": [SERVER_RESULT]},
             {"role": "assistant", "content": "one"}]
    second_call = {**SERVER_CALL, "id": "s9"}
    second = [{"role": "assistant", "content": [{"type": "text", "text": "two"}, second_call]}]
    table = _table(("do it", [{"type": "text", "text": "one"}], first, []),
                   ("next", [{"type": "text", "text": "two"}], second, [{**SERVER_RESULT, "tool_use_id": "s9"}]))
    messages = [ASKED, {"role": "assistant", "content": "one"}, {"role": "user", "content": "next"},
                {"role": "assistant", "content": [{"type": "text", "text": "two"}]}]
    spliced = splice(messages, table)
    assert spliced == [ASKED, *first, {"role": "user", "content": "next"}, *second,
                       {"role": "user", "content": [{**SERVER_RESULT, "tool_use_id": "s9"}]}]
