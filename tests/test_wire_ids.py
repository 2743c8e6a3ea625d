from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lynkr.wire.ids import (
    RESERVED_PREFIX,
    generated_id,
    to_anthropic_id,
    to_short_upstream_id,
    to_upstream_id,
    upstream_id_mapper,
)

VALID = re.compile(r"^[a-zA-Z0-9_-]+$")
SHORT = re.compile(r"[a-zA-Z0-9]{9}")


@pytest.mark.parametrize("upstream_id", ["call_abc123", "toolu_01XyZ", "tool-2", "0"])
def test_valid_ids_pass_through_unchanged(upstream_id: str) -> None:
    assert to_anthropic_id(upstream_id) == upstream_id
    assert to_upstream_id(upstream_id) == upstream_id


@pytest.mark.parametrize("upstream_id", ["functions.Bash:0", "call abc", "", "ид/1", RESERVED_PREFIX + "abc"])
def test_other_ids_are_encoded_under_the_reserved_prefix(upstream_id: str) -> None:
    encoded = to_anthropic_id(upstream_id)
    assert encoded.startswith(RESERVED_PREFIX)
    assert VALID.match(encoded)
    assert to_upstream_id(encoded) == upstream_id


def test_the_cli_sample_id_decodes_to_a_kimi_style_id() -> None:
    assert to_upstream_id("lkx_ZnVuY3Rpb25zLkJhc2g6MQ") == "functions.Bash:1"


@given(st.text())
def test_every_string_round_trips(upstream_id: str) -> None:
    encoded = to_anthropic_id(upstream_id)
    assert VALID.match(encoded)
    assert to_upstream_id(encoded) == upstream_id


@given(st.from_regex(VALID, fullmatch=True))
def test_to_upstream_id_never_maps_two_client_ids_to_one_upstream_id(client_id: str) -> None:
    # Every valid id is either ours (decodes and re-encodes to itself) or passes through.
    upstream = to_upstream_id(client_id)
    assert to_anthropic_id(upstream) == client_id or upstream == client_id


def test_an_undecodable_prefixed_id_goes_upstream_unchanged() -> None:
    assert to_upstream_id(RESERVED_PREFIX + "A") == RESERVED_PREFIX + "A"
    assert to_upstream_id(RESERVED_PREFIX + "AB") == RESERVED_PREFIX + "AB"  # not the canonical encoding


def test_generated_ids_are_deterministic_valid_and_distinct() -> None:
    first = generated_id("msg_0123", 0)
    assert first == generated_id("msg_0123", 0)
    assert VALID.match(first) and first.startswith("toolu_")
    assert len({generated_id("msg_0123", i) for i in range(50)} | {generated_id("msg_other", 0)}) == 51
    assert to_upstream_id(first) == first


# -- the short9 scheme (Mistral-family models) ----------------------------------------------------------------


@given(st.from_regex(SHORT, fullmatch=True))
def test_short_upstream_ids_come_back_to_the_upstream_exactly(upstream_id: str) -> None:
    client_id = to_anthropic_id(upstream_id)  # what the client sees and echoes back
    assert client_id == upstream_id
    assert to_short_upstream_id(client_id) == upstream_id


@given(st.text())
def test_any_other_id_maps_to_nine_alphanumerics_deterministically(client_id: str) -> None:
    short = to_short_upstream_id(client_id)
    assert SHORT.fullmatch(short)
    assert to_short_upstream_id(client_id) == short


def test_the_ids_of_a_conversation_map_to_distinct_short_ids() -> None:
    ids = [f"toolu_01{i:022d}" for i in range(2000)] + [generated_id("msg_x", i) for i in range(2000)]
    ids += [to_anthropic_id(f"functions.Bash:{i}") for i in range(2000)]
    assert len({to_short_upstream_id(client_id) for client_id in ids}) == len(ids)


def test_the_scheme_picks_the_mapping() -> None:
    assert upstream_id_mapper("standard")("call_abc123") == "call_abc123"
    assert SHORT.fullmatch(upstream_id_mapper("short9")("call_abc123"))
