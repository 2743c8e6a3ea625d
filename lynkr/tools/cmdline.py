"""What a shell command line would do, in canonical actions."""

from __future__ import annotations

from collections.abc import Sequence

from lynkr.tools.base import Action


def shell_actions(command: str, *, cwd: object = None) -> Sequence[Action]:
    detail = {} if cwd in (None, "") else {"cwd": str(cwd)}
    return [Action(kind="shell", command=command, detail=detail)]
