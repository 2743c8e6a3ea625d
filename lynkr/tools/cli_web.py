"""Claude Code's ``WebFetch`` under its own name: public http(s) pages only.

Every hop (the URL and each redirect) is judged before it is requested: its host must resolve to public
addresses only, unless ``LYNKR_WEB_FETCH_ALLOWED_HOSTS`` names it (:func:`lynkr.tools.policy.fetch_problem`).
HTML comes back as readable text, a page at a time; when lynkr can ask a model (``ToolContext.summarize``) the
prompt is answered about the page instead, as the CLI does with its small model.
"""

from __future__ import annotations

import html as htmllib
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import attrs
import httpx

from lynkr.tools.base import Action, Tool, ToolContext, ToolInputError, ToolResult, ToolSpec
from lynkr.tools.cli_builtins import FAMILY, cli_schema
from lynkr.tools.policy import fetch_problem

if TYPE_CHECKING:
    from lynkr.config import Config

FETCH_MAX_BYTES = 5 * 1024 * 1024
FETCH_TIMEOUT_S = 30.0
FETCH_PAGE_CHARS = 20_000
FETCH_MAX_REDIRECTS = 5


@attrs.frozen
class WebFetch:
    allowed_hosts: tuple[str, ...]
    spec: ToolSpec = ToolSpec(
        name="WebFetch",
        family=FAMILY,
        kinds=("net.fetch",),
        description=(
            "Fetch a public http(s) URL and return its text (HTML reduced to text), or the answer to the prompt "
            "about it when lynkr can ask a model. Private, loopback and link-local addresses are refused."
        ),
        input_schema=cli_schema(
            {
                "url": {"type": "string", "format": "uri", "description": "The URL to fetch content from"},
                "prompt": {"type": "string", "description": "The prompt to run on the fetched content"},
                "offset": {"type": "number", "description": "Character position in the page text to start from"},
            },
            ["url", "prompt"],
        ),
    )

    def actions(self, arguments: Mapping[str, Any]) -> Sequence[Action]:
        url = str(arguments["url"])
        if urlsplit(url).scheme not in ("http", "https"):
            raise ToolInputError(f"{url} is not an http(s) URL; WebFetch fetches web pages only")
        return [Action(kind="net.fetch", url=url)]

    async def run(self, arguments: Mapping[str, Any], context: ToolContext) -> ToolResult:
        url = str(arguments["url"])
        async with httpx.AsyncClient(timeout=FETCH_TIMEOUT_S, follow_redirects=False, trust_env=False) as client:
            for _ in range(FETCH_MAX_REDIRECTS + 1):
                # Every hop is judged again: a public page may redirect to a private address.
                problem = await fetch_problem(url, self.allowed_hosts)
                if problem is not None:
                    return ToolResult(content=f"lynkr's policy refused this WebFetch: {problem}", is_error=True)
                async with client.stream("GET", url, headers={"user-agent": "lynkr-webfetch"}) as response:
                    if response.is_redirect and "location" in response.headers:
                        url = str(response.url.join(response.headers["location"]))
                        continue
                    body = bytearray()
                    async for chunk in response.aiter_bytes():
                        body += chunk
                        if len(body) > FETCH_MAX_BYTES:
                            break
                    status, media_type = response.status_code, response.headers.get("content-type", "")
                    charset = response.charset_encoding or "utf-8"
                break
            else:
                return ToolResult(content=f"{arguments['url']} redirects more than {FETCH_MAX_REDIRECTS} times", is_error=True)
        text = bytes(body[:FETCH_MAX_BYTES]).decode(charset, errors="replace")
        if "html" in media_type or text.lstrip()[:15].lower().startswith(("<!doctype html", "<html")):
            text = html_text(text)
        if status >= 400:
            return ToolResult(content=f"Request failed with status code {status}\n{text[:2000]}", is_error=True)
        start = int(arguments.get("offset") or 0)
        page = text[start : start + FETCH_PAGE_CHARS]
        if context.summarize is not None and start == 0:
            answer = await context.summarize(f"{arguments['prompt']}\n\nWeb page content of {url}:\n{page}")
            return ToolResult(content=answer)
        more = start + FETCH_PAGE_CHARS < len(text)
        note = f"\n\n[page text continues: call WebFetch again with offset={start + FETCH_PAGE_CHARS}]" if more else ""
        return ToolResult(content=f"Content of {url} (status {status}):\n{page}{note}")


_SCRIPTS = re.compile(r"<(script|style|noscript)\b.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
_BREAKS = re.compile(r"<(br|/p|/div|/h[1-6]|/li|/tr|p|div|h[1-6]|li|tr)\b[^>]*>", re.IGNORECASE)
_TAGS = re.compile(r"<[^>]+>")
_BLANK_LINES = re.compile(r"\n\s*\n+")


def html_text(html: str) -> str:
    """A readable text of an HTML page: scripts and styles dropped, block ends as line breaks, entities decoded."""
    text = _SCRIPTS.sub(" ", html)
    text = _BREAKS.sub("\n", text)
    text = _TAGS.sub("", text)
    text = htmllib.unescape(text)
    lines = [" ".join(line.split()) for line in text.splitlines()]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def tools(config: Config) -> list[Tool]:
    return [WebFetch(config.tools.web_fetch_allowed_hosts)]


PROJECTIONS: tuple[()] = ()
