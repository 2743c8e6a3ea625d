"""Per-language tag extraction: exact definitions, references and imports from one fixture file per language."""

from __future__ import annotations

from pathlib import Path

import pytest

from lynkr.index.extract import extract
from lynkr.index.languages import language_of

FIXTURES = Path(__file__).parent / "fixtures" / "index"

Definitions = list[tuple[str, str, int, str]]  # name, kind, line, scope
References = list[tuple[str, str, int]]  # name, kind, line

EXPECTED: dict[str, tuple[Definitions, References, list[str]]] = {
    "Sample.cs": (
        [
            ("Build", "method", 20, "Demo.Cache"),
            ("Cache", "class", 11, "Demo"),
            ("Demo", "namespace", 4, ""),
            ("Get", "method", 8, "Demo.IGetter"),
            ("Get", "method", 15, "Demo.Cache"),
            ("IGetter", "interface", 6, "Demo"),
            ("Size", "property", 13, "Demo.Cache"),
        ],
        [
            ("Cache", "class", 23),
            ("IGetter", "class", 11),
            ("Lookup", "call", 17),
            ("Store", "class", 11),
            ("WriteLine", "call", 22),
        ],
        ["System", "System.Collections.Generic"],
    ),
    "Sample.java": (
        [
            ("Cache", "class", 9, ""),
            ("Cache", "method", 12, "Cache"),
            ("Getter", "interface", 5, ""),
            ("get", "method", 6, "Getter"),
            ("get", "method", 16, "Cache"),
        ],
        [
            ("Getter", "implementation", 9),
            ("HashMap", "type", 10),
            ("Store", "class", 9),
            ("String", "type", 6),
            ("String", "type", 10),
            ("String", "type", 16),
            ("get", "call", 17),
        ],
        ["java.util.HashMap"],
    ),
    "sample.c": (
        [
            ("LIMIT", "macro", 4, ""),
            ("cache", "struct", 6, ""),
            ("cache_t", "type", 10, ""),
            ("grow", "function", 12, ""),
            ("main", "function", 16, ""),
        ],
        [
            ("cache", "type", 10),
            ("cache_t", "type", 12),
            ("cache_t", "type", 17),
            ("grow", "call", 18),
            ("printf", "call", 18),
        ],
        ["stdio.h", "cache.h"],
    ),
    "sample.cpp": (
        [
            ("Cache", "class", 6, "demo"),
            ("demo", "namespace", 4, ""),
            ("get", "method", 12, "demo.Cache"),
            ("main", "function", 18, ""),
            ("size", "method", 8, "demo.Cache"),
        ],
        [
            ("Cache", "type", 19),
            ("Store", "class", 6),
            ("count", "call", 8),
            ("lookup", "call", 13),
            ("size", "call", 20),
            ("string", "type", 9),
            ("string", "type", 12),
        ],
        ["string", "store.hpp"],
    ),
    "sample.go": (
        [
            ("Build", "function", 22, ""),
            ("Cache", "struct", 10, ""),
            ("Get", "method", 15, "Getter"),
            ("Get", "method", 18, "Cache"),
            ("Getter", "interface", 14, ""),
            ("Limit", "constant", 8, ""),
        ],
        [
            ("Cache", "type", 18),
            ("Cache", "type", 22),
            ("Cache", "type", 24),
            ("Println", "call", 23),
            ("ToUpper", "call", 19),
            ("string", "type", 11),
            ("string", "type", 15),
            ("string", "type", 18),
        ],
        ["fmt", "strings"],
    ),
    "sample.js": (
        [
            ("Cache", "class", 4, ""),
            ("build", "function", 10, ""),
            ("get", "method", 5, "Cache"),
            ("make", "function", 14, ""),
        ],
        [
            ("Cache", "class", 11),
            ("Store", "class", 4),
            ("build", "call", 14),
            ("load", "call", 6),
            ("require", "call", 2),
        ],
        ["./store", "path"],
    ),
    "sample.kt": (
        [
            ("Cache", "class", 9, ""),
            ("Getter", "interface", 5, ""),
            ("build", "function", 15, ""),
            ("get", "method", 6, "Getter"),
            ("get", "method", 10, "Cache"),
        ],
        [
            ("Cache", "call", 17),
            ("Getter", "class", 9),
            ("Store", "class", 9),
            ("lookup", "call", 11),
            ("println", "call", 16),
        ],
        ["kotlin.collections.HashMap"],
    ),
    "sample.php": (
        [
            ("Cache", "class", 12, ""),
            ("Getter", "interface", 7, ""),
            ("build", "function", 20, ""),
            ("get", "method", 9, "Getter"),
            ("get", "method", 14, "Cache"),
        ],
        [
            ("Base", "class", 12),
            ("Cache", "class", 23),
            ("Getter", "implementation", 12),
            ("log_event", "call", 22),
            ("lookup", "call", 16),
        ],
        ["Demo\\Store\\Base"],
    ),
    "sample.py": (
        [
            ("Cache", "class", 7, ""),
            ("build", "function", 12, ""),
            ("get", "method", 8, "Cache"),
        ],
        [
            ("Cache", "call", 13),
            ("Store", "class", 7),
            ("bytes", "type", 8),
            ("load", "call", 9),
            ("str", "type", 8),
        ],
        ["os.path", ".store"],
    ),
    "sample.rb": (
        [
            ("Cache", "class", 5, "Demo"),
            ("Demo", "module", 4, ""),
            ("LIMIT", "constant", 6, "Demo.Cache"),
            ("build", "method", 12, "Demo.Cache"),
            ("get", "method", 8, "Demo.Cache"),
        ],
        [
            ("Cache", "class", 13),
            ("Store", "class", 5),
            ("load", "call", 9),
            ("new", "call", 13),
            ("require", "call", 1),
            ("require_relative", "call", 2),
        ],
        ["json", "store"],
    ),
    "sample.rs": (
        [
            ("Cache", "struct", 3, ""),
            ("Getter", "trait", 7, ""),
            ("build", "function", 17, ""),
            ("get", "method", 8, "Getter"),
            ("get", "method", 12, "Cache"),
        ],
        [
            ("Cache", "type", 17),
            ("Cache", "type", 19),
            ("Getter", "implementation", 11),
            ("HashMap", "type", 4),
            ("Option", "type", 8),
            ("Option", "type", 12),
            ("String", "type", 4),
            ("String", "type", 8),
            ("String", "type", 12),
            ("cloned", "call", 13),
            ("get", "call", 13),
            ("new", "call", 19),
            ("println", "macro", 18),
        ],
        ["std::collections::HashMap"],
    ),
    "sample.ts": (
        [
            ("Cache", "class", 11, ""),
            ("Keyed", "interface", 3, ""),
            ("Mode", "enum", 9, ""),
            ("Size", "type", 7, ""),
            ("build", "function", 17, ""),
            ("key", "method", 4, "Keyed"),
            ("key", "method", 12, "Cache"),
        ],
        [
            ("Cache", "class", 18),
            ("Cache", "type", 17),
            ("Keyed", "implementation", 11),
            ("Size", "type", 17),
            ("Store", "class", 11),
            ("format", "call", 13),
        ],
        ["./store"],
    ),
    "sample.tsx": (
        [("Button", "function", 7, ""), ("Props", "interface", 3, "")],
        [("Props", "type", 7), ("track", "call", 8)],
        ["react"],
    ),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_extract_finds_exact_definitions_references_and_imports(name: str) -> None:
    language = language_of(name)
    assert language is not None
    facts = extract(name, language, (FIXTURES / name).read_bytes())
    definitions, references, imports = EXPECTED[name]
    assert (
        sorted((d.name, d.kind, d.line, d.scope) for d in facts.definitions)
        == definitions
    )
    assert sorted({(r.name, r.kind, r.line) for r in facts.references}) == references
    assert list(facts.imports) == imports
    assert not facts.parse_errors


def test_every_listed_language_has_a_fixture() -> None:
    languages = {language_of(name) for name in EXPECTED}
    assert languages >= {
        "python",
        "javascript",
        "typescript",
        "tsx",
        "go",
        "rust",
        "java",
        "c",
        "cpp",
        "csharp",
        "ruby",
        "php",
        "kotlin",
    }


def test_definition_carries_span_and_signature() -> None:
    facts = extract("sample.py", "python", (FIXTURES / "sample.py").read_bytes())
    get = next(d for d in facts.definitions if d.name == "get")
    assert (get.line, get.column, get.end_line, get.end_column) == (8, 4, 9, 29)
    assert get.signature == "def get(self, key: str) -> bytes:"
    assert get.qualified == "Cache.get"


def test_language_without_query_gets_file_level_facts() -> None:
    facts = extract("run.sh", "bash", b"#!/bin/sh\necho hi\n")
    assert (facts.language, facts.lines, facts.definitions, facts.references) == (
        "bash",
        2,
        (),
        (),
    )


def test_syntax_errors_are_flagged_and_partial_facts_kept() -> None:
    facts = extract("broken.py", "python", b"def ok():\n    pass\n\ndef broken(:\n")
    assert facts.parse_errors
    assert "ok" in {d.name for d in facts.definitions}
