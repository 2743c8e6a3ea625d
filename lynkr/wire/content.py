"""What the text in a Claude Code transcript says: a person's own words, a tool result's text, a failed command's
exit code.  Plain functions over message content as the Messages API shapes it; no I/O.
"""

from __future__ import annotations

import re

# The CLI wraps context it adds to a user message (file state, todo lists, hook output) in these tags.
_SYSTEM_REMINDER = re.compile(r"<system-reminder>.*?(?:</system-reminder>|\Z)", re.DOTALL)
# How the CLI's Bash (and lynkr's, which shapes results the same way) opens a failed command's result.
_EXIT_CODE = re.compile(r"Exit code (-?\d+)")


def user_words(content: object) -> str:
    """The text of a user message without the CLI's ``<system-reminder>`` blocks: what the person typed."""
    if isinstance(content, str):
        texts = [content]
    elif isinstance(content, list):
        texts = [b["text"] for b in content if isinstance(b, dict) and b.get("type") == "text"
                 and isinstance(b.get("text"), str)]
    else:
        return ""
    return "\n".join(part for part in (_SYSTEM_REMINDER.sub("", text).strip() for text in texts) if part)


def result_text(content: object) -> str:
    """A tool result's text, however it is shaped (a string, or text blocks among images)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            str(block.get("text", "")) for block in content if isinstance(block, dict) and block.get("type") == "text"
        )
    return ""


def exit_code(text: str) -> int | None:
    """The exit code a result's first non-blank line states (``Exit code 2``), or None when it states none."""
    for line in text.splitlines():
        if line.strip():
            opening = _EXIT_CODE.fullmatch(line.strip())
            return int(opening.group(1)) if opening else None
    return None
