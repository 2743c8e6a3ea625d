"""The environment every tool subprocess gets: the daemon's own, with every credential and setting removed.

A command the model runs must not be able to read a provider key with ``env``, ``printenv`` or
``cat /proc/self/environ``.  So the environment is built once per toolbox from the daemon's, dropping:

* every variable lynkr's configuration reads (each name ``Config.describe()`` lists, providers included), and
  everything under ``LYNKR_`` and ``ANTHROPIC_``;
* every variable whose name says it holds a credential (``*_API_KEY``, ``*KEY``, ``*TOKEN*``, ``*SECRET*``,
  ``*PASSWORD*``, ``*PASSWD*``, ``*CREDENTIAL*``, ``*AUTH*`` but not ``*AUTHOR*``, and not the SSH agent socket);
* every variable whose value contains a configured secret, whatever its name;
* ``BASH_ENV`` and ``ENV``, which would make every shell run a file first.

A child's environment is not the only copy: ``/proc/<daemon pid>/environ`` still holds the daemon's own, and any
process of the same user can read it (``cat /proc/$PPID/environ``).  :func:`seal_daemon_environment` marks the
daemon non-dumpable (``PR_SET_DUMPABLE``), which makes its ``/proc`` files readable by root only; tool
subprocesses are dumpable again after their ``exec``, so nothing else changes for them.
"""

from __future__ import annotations

import ctypes
import os
import re
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING

from lynkr.events.scrub import MIN_SECRET_LENGTH

if TYPE_CHECKING:
    from lynkr.config import Config

_DROPPED_PREFIXES = ("LYNKR_", "ANTHROPIC_")
_CREDENTIAL_NAME = re.compile(r"(KEY$|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|AUTH(?!OR))", re.IGNORECASE)
# Names that look like credentials but are not: they point at an agent or a file the user's tools need.
_KEPT_NAMES = frozenset({"SSH_AUTH_SOCK", "GPG_AGENT_INFO"})
_STARTUP_FILES = frozenset({"BASH_ENV", "ENV"})


def configured_names() -> frozenset[str]:
    """Every environment variable lynkr's configuration reads."""
    from lynkr.config import Config

    return frozenset(env for _, env, _, _ in Config.describe() if env)


def is_credential_name(name: str) -> bool:
    return name not in _KEPT_NAMES and _CREDENTIAL_NAME.search(name) is not None


def tool_environ(config: Config, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The scrubbed copy of ``base`` (the daemon's environment by default) that tool subprocesses run with."""
    source = os.environ if base is None else base
    dropped_names = configured_names()
    secrets = [secret for secret in config.secrets() if len(secret) >= MIN_SECRET_LENGTH]
    kept: dict[str, str] = {}
    for name, value in source.items():
        if name in dropped_names or name in _STARTUP_FILES or name.upper().startswith(_DROPPED_PREFIXES):
            continue
        if is_credential_name(name):
            continue
        if any(secret in value for secret in secrets):
            continue
        kept[name] = value
    return kept


_PR_SET_DUMPABLE = 4


def seal_daemon_environment() -> bool:
    """Keep same-user processes (tool subprocesses) from reading this process's environment and memory through
    ``/proc``.  Linux only; returns whether it took effect.  Root still can, as root can read anything."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False
