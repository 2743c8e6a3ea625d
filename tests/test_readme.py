"""The README is what a new user reads first: its commands and its configuration table must be true."""

from __future__ import annotations

from pathlib import Path

from lynkr.cli import settings_table

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def test_readme_configuration_table_matches_the_code() -> None:
    assert settings_table() in README


def test_readme_opens_with_the_install_and_test_commands_ci_runs() -> None:
    blocks = [block.split("```", 1)[0].strip() for block in README.split("```sh\n")[1:3]]
    assert "python -m lynkr" in blocks[0]
    assert "pytest" in blocks[1]
    assert blocks[1] in (ROOT / ".ci" / "run").read_text()
