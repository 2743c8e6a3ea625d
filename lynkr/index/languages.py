"""Which language a file is in, and the tag query (a ``.scm`` data file) that extracts its facts.

Grammars come from tree-sitter-language-pack 0.13, which bundles them: nothing is downloaded.  A language
with a grammar name but no query file gets file-level facts only (its language and line count).
"""

from __future__ import annotations

import functools
from importlib import resources
from pathlib import PurePosixPath

import tree_sitter
import tree_sitter_language_pack

# File suffix -> language name (the grammar's name in the language pack).
SUFFIXES: dict[str, str] = {
    ".py": "python", ".pyi": "python",
    ".js": "javascript", ".jsx": "javascript", ".mjs": "javascript", ".cjs": "javascript",
    ".ts": "typescript", ".mts": "typescript", ".cts": "typescript", ".tsx": "tsx",
    ".go": "go", ".rs": "rust", ".java": "java",
    ".c": "c", ".h": "c",
    ".cc": "cpp", ".cpp": "cpp", ".cxx": "cpp", ".hpp": "cpp", ".hh": "cpp", ".hxx": "cpp",
    ".cs": "csharp", ".rb": "ruby", ".php": "php", ".kt": "kotlin", ".kts": "kotlin",
    # Languages without a query: counted in the language mix, not parsed.
    ".sh": "bash", ".bash": "bash", ".swift": "swift", ".scala": "scala", ".lua": "lua", ".md": "markdown",
    ".toml": "toml", ".yaml": "yaml", ".yml": "yaml", ".json": "json", ".html": "html", ".css": "css",
    ".scss": "scss", ".sql": "sql", ".r": "r", ".dart": "dart", ".ex": "elixir", ".exs": "elixir",
    ".hs": "haskell", ".ml": "ocaml", ".zig": "zig", ".vue": "vue", ".svelte": "svelte",
}
SPECIAL_NAMES: dict[str, str] = {"Rakefile": "ruby", "Gemfile": "ruby", "Dockerfile": "dockerfile",
                                 "Makefile": "make"}

# Language -> the query file that serves it (TSX is a superset of TypeScript's grammar).
QUERY_FILES: dict[str, str] = {
    "python": "python", "javascript": "javascript", "typescript": "typescript", "tsx": "typescript",
    "go": "go", "rust": "rust", "java": "java", "c": "c", "cpp": "cpp", "csharp": "csharp", "ruby": "ruby",
    "php": "php", "kotlin": "kotlin",
}


def language_of(path: str) -> str | None:
    """The language of ``path`` by its name, or None for a file the index does not know."""
    pure = PurePosixPath(path)
    return SPECIAL_NAMES.get(pure.name) or SUFFIXES.get(pure.suffix.lower())


def has_query(language: str) -> bool:
    return language in QUERY_FILES


@functools.cache
def parser_and_query(language: str) -> tuple[tree_sitter.Parser, tree_sitter.Query]:
    """The parser and compiled tag query of ``language``, built once per process."""
    grammar = tree_sitter_language_pack.get_language(language)  # type: ignore[arg-type]
    source = resources.files("lynkr.index").joinpath("queries", f"{QUERY_FILES[language]}.scm").read_text()
    return tree_sitter.Parser(grammar), tree_sitter.Query(grammar, source)
