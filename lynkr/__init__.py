"""lynkr: a local Anthropic Messages API daemon for Claude Code and other LLM back ends."""

__version__ = "0.1.0"
