"""No web page can drive the daemon: foreign origins, rebound Host names and non-JSON bodies are refused.

Requests go to a real daemon on a loopback port, shaped the way a browser sends them; the refusals are read
back from the daemon's event log once it has stopped.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import trio

from lynkr.errors import PermissionDenied
from lynkr.events.catalog import RequestReceived, RequestRefused
from lynkr.http.asgi import Scope
from lynkr.http.guard import RECORDED_BURST, RECORDED_PER_S, GuardConfig, RequestGuard
from tests.conftest import make_config, recorded_events, running_lynkr
from tests.fakes import FakeUpstream, serve_fake

TEST_TIMEOUT_S = 15
REQUEST: dict[str, Any] = {
    "model": "claude-sonnet-4-5-20250929",
    "max_tokens": 64,
    "messages": [{"role": "user", "content": "hello"}],
}
BODY = orjson.dumps(REQUEST)


@asynccontextmanager
async def daemon(tmp_path: Path, **env: str) -> AsyncIterator[tuple[httpx.AsyncClient, FakeUpstream, int]]:
    """A daemon in front of a fake OpenAI upstream, a client for it, the fake, and the daemon's port."""
    fake = FakeUpstream()
    with trio.fail_after(TEST_TIMEOUT_S):
        async with serve_fake(fake) as upstream:
            config = make_config(
                tmp_path,
                {
                    "MODEL_PROVIDER": "openai",
                    "OPENAI_ENDPOINT": f"{upstream}/v1/chat/completions",
                    "OPENAI_API_KEY": "sk-guard-test",
                    "OPENAI_MODEL": "gpt-test",
                    **env,
                },
            )
            async with running_lynkr(config) as lynkr:
                port = int(lynkr.base_url.rsplit(":", 1)[1])
                async with httpx.AsyncClient(base_url=lynkr.base_url, timeout=5) as client:
                    yield client, fake, port


def refused_events(tmp_path: Path) -> list[RequestRefused]:
    return [event for event in recorded_events(tmp_path / "data") if isinstance(event, RequestRefused)]


def error_of(response: httpx.Response, status: int, error_type: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["type"] == "error"
    assert body["error"]["type"] == error_type
    assert body["request_id"] == response.headers["request-id"]
    message: str = body["error"]["message"]
    return message


async def test_a_cross_origin_text_plain_post_is_refused_403_and_recorded(tmp_path: Path) -> None:
    async with daemon(tmp_path) as (client, fake, _):
        # What fetch(url, {method: "POST", body: JSON.stringify(...)}) sends from a page: no preflight needed.
        response = await client.post(
            "/v1/messages",
            content=BODY,
            headers={"origin": "https://evil.example", "content-type": "text/plain;charset=UTF-8"},
        )
    message = error_of(response, 403, "permission_error")
    assert "'https://evil.example'" in message and "LYNKR_ALLOWED_ORIGINS" in message
    assert fake.model_calls == [], "a refused request never costs an upstream call"
    [event] = refused_events(tmp_path)
    assert (event.reason, event.method, event.path) == ("origin", "POST", "/v1/messages")
    assert event.origin == "https://evil.example"
    assert event.host is not None and event.host.startswith("127.0.0.1:")
    assert event.content_type == "text/plain;charset=UTF-8"
    assert event.request_id == response.headers["request-id"]


async def test_a_rebound_host_is_refused_403_and_recorded(tmp_path: Path) -> None:
    async with daemon(tmp_path) as (client, fake, port):
        # After DNS rebinding the page is same-origin with the daemon: no Origin check applies, the Host does.
        post = await client.post("/v1/messages", json=REQUEST, headers={"host": f"evil.example:{port}"})
        health = await client.get("/health", headers={"host": "evil.example:8080"})
        other_port = await client.get("/health", headers={"host": f"127.0.0.1:{port + 1}"})
    message = error_of(post, 403, "permission_error")
    assert "'evil.example:" in message and "LYNKR_ALLOWED_HOSTS" in message and f"127.0.0.1:{port}" in message
    error_of(health, 403, "permission_error")
    error_of(other_port, 403, "permission_error")
    assert fake.model_calls == []
    events = refused_events(tmp_path)
    assert [(event.reason, event.method, event.path, event.host) for event in events] == [
        ("host", "POST", "/v1/messages", f"evil.example:{port}"),
        ("host", "GET", "/health", "evil.example:8080"),
        ("host", "GET", "/health", f"127.0.0.1:{port + 1}"),
    ]
    assert all(event.origin is None for event in events)


async def test_a_form_post_is_refused_415_and_recorded(tmp_path: Path) -> None:
    async with daemon(tmp_path) as (client, fake, _):
        form = await client.post("/v1/messages", data={"model": "x"})
        no_type = await client.post("/v1/messages/count_tokens", content=BODY)
        multipart = await client.post("/v1/messages", files={"file": ("a.json", BODY)})
    message = error_of(form, 415, "invalid_request_error")
    assert "application/x-www-form-urlencoded" in message and "application/json" in message
    assert "no content-type" in error_of(no_type, 415, "invalid_request_error")
    assert "multipart/form-data" in error_of(multipart, 415, "invalid_request_error")
    assert fake.model_calls == []
    events = refused_events(tmp_path)
    assert [(event.reason, event.path) for event in events] == [
        ("content-type", "/v1/messages"),
        ("content-type", "/v1/messages/count_tokens"),
        ("content-type", "/v1/messages"),
    ]
    assert events[0].content_type == "application/x-www-form-urlencoded"
    assert events[1].content_type is None


async def test_an_allowed_origin_and_the_clis_own_requests_pass(tmp_path: Path) -> None:
    allowed = "https://console.example:8443"
    # The prompt cache off: the same request three times must reach the upstream three times.
    origins = {"LYNKR_ALLOWED_ORIGINS": f"{allowed}, https://other.example", "PROMPT_CACHE_ENABLED": "false"}
    async with daemon(tmp_path, **origins) as (client, fake, port):
        from_page = await client.post("/v1/messages", json=REQUEST, headers={"origin": allowed.upper() + "/"})
        # The CLI and the SDKs: no Origin, Host as the base URL gives it, JSON with or without a charset.
        plain = await client.post(
            "/v1/messages", content=BODY, headers={"content-type": "application/json; charset=utf-8"}
        )
        vendor_json = await client.post(
            "/v1/messages", content=BODY, headers={"content-type": "application/vnd.example+json"}
        )
        by_name = await client.get("/health", headers={"host": f"localhost:{port}"})
        no_port = await client.get("/health", headers={"host": "localhost"})
        elsewhere = await client.post("/v1/messages", json=REQUEST, headers={"origin": "https://evil.example"})
    assert from_page.status_code == 200, from_page.text
    assert plain.status_code == 200 and vendor_json.status_code == 200
    assert by_name.status_code == 200 and no_port.status_code == 200
    error_of(elsewhere, 403, "permission_error")
    assert len(fake.model_calls) == 3
    assert [event.reason for event in refused_events(tmp_path)] == ["origin"]
    received = [event for event in recorded_events(tmp_path / "data") if isinstance(event, RequestReceived)]
    assert len(received) == 3


async def test_a_configured_host_name_is_answered(tmp_path: Path) -> None:
    async with daemon(tmp_path, LYNKR_ALLOWED_HOSTS="lynkr.internal,Other.Internal") as (client, _, port):
        named = await client.get("/health", headers={"host": f"LYNKR.internal:{port}"})
        other = await client.get("/health", headers={"host": "other.internal"})
        unknown = await client.get("/health", headers={"host": f"lynkr.external:{port}"})
    assert named.status_code == 200 and other.status_code == 200
    error_of(unknown, 403, "permission_error")


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not _ipv6_loopback(), reason="this machine has no IPv6 loopback to bind")
async def test_a_daemon_bound_to_ipv6_loopback_answers_its_bracketed_address(tmp_path: Path) -> None:
    async with daemon(tmp_path, LYNKR_HOST="::1") as (client, _, port):
        bracketed = await client.get("/health")
        by_name = await client.get("/health", headers={"host": f"localhost:{port}"})
        wrong_port = await client.get("/health", headers={"host": f"[::1]:{port + 1}"})
    assert bracketed.request.headers["host"] == f"[::1]:{port}"
    assert bracketed.status_code == 200 and by_name.status_code == 200
    error_of(wrong_port, 403, "permission_error")


# The checks themselves, on the scope a server would hand the app.


def scope(method: str = "GET", **headers: str) -> Scope:
    return {
        "type": "http",
        "method": method,
        "path": "/v1/messages",
        "headers": [(name.replace("_", "-").encode(), value.encode()) for name, value in headers.items()],
    }


async def _never_recorded(event: RequestRefused) -> None:
    raise AssertionError(f"check() records nothing: {event}")


def test_a_daemon_bound_to_every_address_answers_any_ip_literal_but_no_foreign_name() -> None:
    guard = RequestGuard(GuardConfig(), bound=("0.0.0.0", 8080), record=_never_recorded)
    assert guard.check(scope(host="192.168.1.20:8080"), "health") is None
    assert guard.check(scope(host="[fe80::1]:8080"), "health") is None
    assert guard.check(scope(host="localhost:8080"), "health") is None
    refusal = guard.check(scope(host="evil.example:8080"), "health")
    assert refusal is not None and refusal.reason == "host"
    wrong_port = guard.check(scope(host="192.168.1.20:9090"), "health")
    assert wrong_port is not None and wrong_port.reason == "host"


def test_a_loopback_daemon_refuses_other_addresses_and_checks_posts_only_on_routes() -> None:
    guard = RequestGuard(GuardConfig(), bound=("127.0.0.1", 8080), record=_never_recorded)
    lan = guard.check(scope(host="192.168.1.20:8080"), "health")
    assert lan is not None and lan.reason == "host"
    assert guard.check(scope(host="[::1]:8080"), "health") is None
    # An unknown route answers 404 whatever the body: nothing is served, so its type does not matter.
    assert guard.check(scope("POST", host="127.0.0.1:8080"), "unknown") is None
    on_route = guard.check(scope("POST", host="127.0.0.1:8080", content_type="text/plain"), "messages")
    assert on_route is not None and on_route.reason == "content-type" and on_route.error.status == 415
    # The origin is checked before anything else, and "null" (sandboxed frames, file:// pages) is an origin.
    sandboxed = guard.check(scope("POST", origin="null", host="evil.example"), "messages")
    assert sandboxed is not None and sandboxed.reason == "origin" and sandboxed.error.status == 403


async def test_a_flood_of_refusals_is_answered_in_full_but_recorded_at_a_bounded_rate() -> None:
    now = [100.0]
    events: list[RequestRefused] = []

    async def record(event: RequestRefused) -> None:
        events.append(event)

    guard = RequestGuard(GuardConfig(), bound=("127.0.0.1", 8080), record=record, clock=lambda: now[0])
    from_page = scope("POST", origin="https://evil.example", host="127.0.0.1:8080", content_type="text/plain")
    refused = 0
    for number in range(25):
        with pytest.raises(PermissionDenied):
            await guard.admit(from_page, "messages", f"req_{number}")
        refused += 1
    assert refused == 25
    assert len(events) == RECORDED_BURST
    assert all(event.unrecorded_before == 0 for event in events)
    now[0] += 1.5 / RECORDED_PER_S  # room for one more record
    with pytest.raises(PermissionDenied):
        await guard.admit(from_page, "messages", "req_after")
    assert (events[-1].request_id, events[-1].unrecorded_before) == ("req_after", 5)
    await guard.admit(scope("POST", host="127.0.0.1:8080", content_type="application/json"), "messages", "req_ok")
    assert len(events) == RECORDED_BURST + 1, "an admitted request records nothing"
