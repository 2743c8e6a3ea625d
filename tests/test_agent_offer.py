"""Which of lynkr's tools a turn offers, and whose calls lynkr runs, in each mode."""

from __future__ import annotations

from lynkr.agent.offer import NO_OFFER, OfferBook, offer_for, offered_request
from lynkr.tools.base import ToolSpec

SCHEMA = {"type": "object", "properties": {}}
SPECS = (
    ToolSpec(name="Bash", description="cli bash", input_schema=SCHEMA, family="cli"),
    ToolSpec(name="fs_read", description="read", input_schema=SCHEMA, family="workspace"),
    ToolSpec(name="workspace_git_status", description="status", input_schema=SCHEMA, family="workspace"),
)
CLIENT_TOOLS = [{"name": "Bash", "input_schema": SCHEMA}, {"name": "Agent", "input_schema": SCHEMA}]


def test_client_mode_with_no_family_switched_on_offers_nothing() -> None:
    assert offer_for(CLIENT_TOOLS, SPECS, families=("mcp",), server_mode=False) is NO_OFFER
    assert NO_OFFER.empty


def test_server_mode_owns_the_cli_builtins_the_client_sent_and_adds_only_new_names() -> None:
    offer = offer_for(CLIENT_TOOLS, SPECS, families=("cli", "workspace"), server_mode=True)
    assert offer.owned == {"Bash", "fs_read", "workspace_git_status"}
    assert [tool["name"] for tool in offer.added] == ["fs_read", "workspace_git_status"]
    assert "Agent" not in offer.owned  # a call lynkr cannot run goes back to the client


def test_client_mode_leaves_a_name_the_client_sent_to_the_client() -> None:
    offer = offer_for(CLIENT_TOOLS, SPECS, families=("cli", "workspace"), server_mode=False)
    assert offer.owned == {"fs_read", "workspace_git_status"}
    assert [tool["name"] for tool in offer.added] == ["fs_read", "workspace_git_status"]


def test_the_offered_request_keeps_the_client_tools_first_and_leaves_the_original_alone() -> None:
    request = {"model": "m", "tools": list(CLIENT_TOOLS)}
    offer = offer_for(CLIENT_TOOLS, SPECS, families=("workspace",), server_mode=False)
    offered = offered_request(request, offer)
    assert [tool["name"] for tool in offered["tools"]] == ["Bash", "Agent", "fs_read", "workspace_git_status"]
    assert len(request["tools"]) == 2
    assert offered_request({"model": "m"}, offer)["tools"][0]["name"] == "fs_read"


def test_the_offer_book_builds_an_offer_once_per_set_of_client_tools_and_forgets_the_oldest() -> None:
    book = OfferBook(SPECS, families=("workspace",), server_mode=False, size=2)
    first = book.offer(CLIENT_TOOLS)
    assert book.offer(list(CLIENT_TOOLS)) is first
    assert book.offer([{"name": "fs_read"}]).owned == {"workspace_git_status"}
    book.offer([])
    book.offer([{"name": "other"}])  # the third distinct set: the least recently used one goes
    assert book.offer(CLIENT_TOOLS) is not first
    assert book.offer(CLIENT_TOOLS).owned == first.owned
