"""Which tools a turn offers beside the client's, and which tool calls lynkr runs itself.

In server mode lynkr runs every tool of the families ``LYNKR_SERVER_MODE_TOOLS`` names, the CLI's built-ins
(``Bash``, ``Read``, ...) included under their own names, so a client's ``Bash`` is lynkr's to run.  In client
mode a name the client sent stays the client's: lynkr only adds its tools of ``LYNKR_CLIENT_MODE_TOOLS`` whose
names the client does not use.  Either way a tool is never offered twice, and a call lynkr cannot run
(``Agent``, ``Skill``, ...) goes back to the client.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs

from lynkr.tools.base import ToolSpec


@attrs.frozen(kw_only=True)
class Offer:
    owned: frozenset[str]  # tool names whose calls lynkr runs in this turn
    added: tuple[dict[str, Any], ...]  # tool definitions lynkr adds to the client's

    @property
    def empty(self) -> bool:
        """Nothing for lynkr to do: the turn goes to the providers as the client sent it."""
        return not self.owned


NO_OFFER = Offer(owned=frozenset(), added=())


def offer_for(
    client_tools: Iterable[Mapping[str, Any]], specs: Sequence[ToolSpec], *, families: Iterable[str], server_mode: bool
) -> Offer:
    wanted = set(families)
    chosen = [spec for spec in specs if spec.family in wanted]
    if not chosen:
        return NO_OFFER
    client_names = {str(tool.get("name", "")) for tool in client_tools}
    added = tuple(spec.as_anthropic() for spec in chosen if spec.name not in client_names)
    if server_mode:
        owned = frozenset(spec.name for spec in chosen)
    else:
        owned = frozenset(spec.name for spec in chosen if spec.name not in client_names)
    return Offer(owned=owned, added=added) if owned else NO_OFFER


class OfferBook:
    """The offers of one mode, remembered by the client's tool names: a CLI sends the same tools every turn,
    so the offer (and lynkr's tool definitions in it) is built once, not per round."""

    def __init__(self, specs: Sequence[ToolSpec], *, families: Iterable[str], server_mode: bool, size: int = 64) -> None:
        self._specs = tuple(specs)
        self._families = tuple(families)
        self._server_mode = server_mode
        self._size = size
        self._offers: OrderedDict[tuple[str, ...], Offer] = OrderedDict()

    def offer(self, client_tools: Sequence[Mapping[str, Any]]) -> Offer:
        names = tuple(str(tool.get("name", "")) for tool in client_tools)
        found = self._offers.get(names)
        if found is None:
            found = offer_for(client_tools, self._specs, families=self._families, server_mode=self._server_mode)
            self._offers[names] = found
            if len(self._offers) > self._size:
                self._offers.popitem(last=False)
        else:
            self._offers.move_to_end(names)
        return found


def offered_request(request: Mapping[str, Any], offer: Offer) -> dict[str, Any]:
    """The client's request with lynkr's tools appended to its own."""
    return {**request, "tools": [*(request.get("tools") or ()), *offer.added]}
