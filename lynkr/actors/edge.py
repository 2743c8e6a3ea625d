"""The HTTP edge actor: serves the ASGI app with hypercorn on a socket the daemon bound.

The daemon binds the listening socket itself, so a port in use is reported before any actor starts, port 0
works in tests, and a restarted edge serves a duplicate of the same socket.
"""

from __future__ import annotations

import logging
import socket
from typing import Any, cast

import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.config import Sockets
from hypercorn.trio.run import worker_serve
from hypercorn.utils import wrap_app

from lynkr.http.app import App

log = logging.getLogger("lynkr.http")


def hypercorn_config(*, graceful_timeout_s: float) -> HypercornConfig:
    config = HypercornConfig()
    config.accesslog = None
    config.errorlog = log
    # hypercorn sends GOAWAY on h2 after this many requests, which fails a long-lived client's next request.
    config.keep_alive_max_requests = 1 << 40
    config.keep_alive_timeout = 75
    config.graceful_timeout = graceful_timeout_s
    config.h11_max_incomplete_size = 64 * 1024
    return config


async def run(
    app: App,
    listening: socket.socket,
    *,
    graceful_timeout_s: float,
    stop: trio.Event,
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    config = hypercorn_config(graceful_timeout_s=graceful_timeout_s)
    sockets = Sockets(secure_sockets=[], insecure_sockets=[listening.dup()], quic_sockets=[])
    await worker_serve(
        wrap_app(cast(Any, app), config.wsgi_max_body_size, "asgi"),
        config,
        sockets=sockets,
        shutdown_trigger=stop.wait,
        task_status=task_status,
    )
