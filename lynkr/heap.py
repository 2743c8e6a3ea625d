"""The garbage collector's settings for a running daemon: fewer, cheaper collections once start-up is done.

CPython's cycle collector runs a young-generation pass every 700 net container allocations, and now and then
a full pass over every object the process holds.  A daemon that has loaded its actors, tree-sitter grammars,
the MCP bridge and the folded log holds a large heap, and one 60 kB Claude Code request allocates thousands
of containers: measured under ``bench/cache.py``, a young pass came every third request (about 160 µs each)
and a full pass every few hundred (about 80 ms: a stall for whatever request it lands in).

So once the daemon is ready, :func:`settle` collects start-up's garbage, freezes what survives (``gc.freeze``:
a permanent generation that later passes skip; it lives as long as the daemon anyway) and lets the young
generation grow to ``YOUNG_THRESHOLD`` allocations before a pass.  A request's own objects are freed by
reference counting when it ends; only cycles wait for the collector, and they wait a little longer.
Only ``lynkr serve`` settles its heap; a daemon run inside another program (the tests) leaves it alone.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 10_000  # CPython's default is 700
OLDER_THRESHOLDS = (10, 10)  # young passes per middle pass, middle passes per full pass: the defaults


def settle() -> None:
    """Collect, freeze what is left, and space out later collections (call once, when start-up is done)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, *OLDER_THRESHOLDS)
