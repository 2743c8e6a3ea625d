"""How long the log keeps sessions whole, collected into ``Config`` as its ``sessions`` group."""

from __future__ import annotations

import attrs

from lynkr.settings import int_between, setting


@attrs.frozen(kw_only=True)
class SessionsConfig:
    retain_days: int = setting(
        0,
        env="LYNKR_RETAIN_DAYS",
        doc="`lynkr log compact` drops the requests and responses of sessions idle for longer than this many "
        "days, keeping a summary of each; 0 keeps everything.",
        converter=int_between(0, what="a whole number of days >= 0", example="a number like 30"),
        default_text="0 (keep everything)",
    )
