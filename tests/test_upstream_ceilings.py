"""The built-in output ceilings: the data file, and how model and deployment names find their family."""

from __future__ import annotations

import pytest

from lynkr.upstream.ceilings import builtin_output_ceiling, output_ceilings


@pytest.mark.parametrize(
    ("model", "ceiling"),
    [
        ("gpt-4o", 16384),
        ("gpt-4o-2024-08-06", 16384),
        ("gpt-4o-2024-05-13", 4096),  # the first snapshot: the exact name is more specific than the family
        ("gpt-4o-mini", 16384),
        ("gpt-4.1", 32768),
        ("gpt-4.1-nano", 32768),
        ("o1", 100000),
        ("o1-mini", 65536),
        ("o3-mini", 100000),
        ("o4-mini-2025-04-16", 100000),
        ("gpt-5", 128000),
        ("gpt-5-mini", 128000),
        ("gpt-5-chat-latest", 16384),
        ("openai/gpt-4o", 16384),  # a router's prefix
        ("meta-llama/Llama-3.3-70B-Instruct", 8192),
        ("llama3.1:8b", 8192),  # an Ollama tag
        ("Qwen/Qwen2.5-Coder-32B-Instruct", 8192),
        ("qwen3-coder-plus", 65536),
        ("mistral-large-latest", 8192),
        ("deepseek-chat", 8192),
        ("deepseek-reasoner", 65536),
        ("gemini-2.5-pro", 65536),
        ("gemini-2.0-flash", 8192),
        ("prod-gpt-4o", 16384),  # an Azure deployment named after its model
        ("team_o3-mini", 100000),
    ],
)
def test_model_families_have_their_published_ceilings(model: str, ceiling: int) -> None:
    assert builtin_output_ceiling(model) == ceiling


@pytest.mark.parametrize("model", ["claude-sonnet-4-5", "gpt-test", "fake-model", "my-deployment", ""])
def test_unknown_models_have_no_ceiling(model: str) -> None:
    assert builtin_output_ceiling(model) is None


def test_the_data_file_lists_lower_case_patterns_with_positive_ceilings() -> None:
    table = output_ceilings()
    assert len(table) >= 30
    assert all(pattern == pattern.lower() and ceiling > 0 for pattern, ceiling in table.items())
