"""Learned limits: a pure fold over their own stream of the log, read back through the by-stream index."""

from __future__ import annotations

from pathlib import Path

from lynkr.events.catalog import BetasUnsupported, DaemonStopped, LimitLearned
from lynkr.events.lmdb_store import LmdbEventStore
from lynkr.events.snapshots import rebuild
from lynkr.upstream.learned import LIMITS_STREAM, LearnedLimits, LimitsBook, decode_limits, encode_limits


def test_the_newest_lesson_about_a_limit_wins_and_betas_accumulate() -> None:
    state = LearnedLimits()
    for event in (
        LimitLearned(provider="azure", model="gpt-4o", kind="output", value=16384),
        LimitLearned(provider="azure", model="gpt-4o", kind="output", value=4096),
        LimitLearned(provider="vllm", model="qwen", kind="context", value=32768),
        BetasUnsupported(provider="foundry", flags=("a",)),
        BetasUnsupported(provider="foundry", flags=("b",)),
        DaemonStopped(reason="not a lesson"),
    ):
        state = state.apply(event)
    assert state.output_ceiling("azure", "gpt-4o") == 4096
    assert state.output_ceiling("azure", "gpt-4.1") is None
    assert state.context_window("vllm", "qwen") == 32768
    assert state.betas_to_drop("foundry") == frozenset({"a", "b"})
    assert state.betas_to_drop("azure") == frozenset()


def test_apply_leaves_the_earlier_state_alone() -> None:
    before = LearnedLimits()
    after = before.apply(LimitLearned(provider="p", model="m", kind="output", value=1))
    assert before.output == {} and after.output == {("p", "m"): 1}


def test_the_book_folds_only_the_limits_stream_of_a_real_log(tmp_path: Path) -> None:
    with LmdbEventStore.open(tmp_path / "events") as store:
        store.append(
            [
                ("session-1", LimitLearned(provider="decoy", model="m", kind="output", value=1)),
                (LIMITS_STREAM, LimitLearned(provider="azure", model="gpt-4o", kind="output", value=16384)),
                ("daemon", DaemonStopped(reason="x")),
                (LIMITS_STREAM, BetasUnsupported(provider="foundry", flags=["new-flag"])),
            ]
        )
        book = LimitsBook(rebuild(store).states["limits"])
    assert book.state.output == {("azure", "gpt-4o"): 16384}, "records in other streams are not lessons"
    assert book.state.betas_to_drop("foundry") == frozenset({"new-flag"})
    book.learn(LimitLearned(provider="azure", model="gpt-4o", kind="context", value=128000))
    assert book.state.context_window("azure", "gpt-4o") == 128000


def test_learned_limits_survive_their_snapshot_encoding() -> None:
    state = (
        LearnedLimits()
        .apply(LimitLearned(provider="azure", model="gpt-4o", kind="output", value=16384))
        .apply(LimitLearned(provider="azure", model="gpt-4o", kind="context", value=128000))
        .apply(BetasUnsupported(provider="foundry", flags=["a", "b"]))
    )
    assert decode_limits(encode_limits(state)) == state
