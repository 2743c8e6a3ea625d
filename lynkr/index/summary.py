"""The project at a glance, from the index: what ``project_summary`` answers and ``CLAUDE.md`` is built from."""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

from lynkr.index.repomap import ranked_files
from lynkr.index.symbols import IndexReader

_SNAKE = re.compile(r"^_*[a-z][a-z0-9]*(_[a-z0-9]+)+_*$")
_CAMEL = re.compile(r"^_*[a-z]+([A-Z][a-z0-9]*)+$")
FORMATTER_HINTS = {
    "ruff": "Lint and format Python with ruff (its settings are in the repository).",
    "black": "Format Python with black.", "isort": "Sort Python imports with isort.",
    "mypy": "Keep mypy clean: type new Python code.", "eslint": "Lint JavaScript/TypeScript with eslint.",
    "prettier": "Format with prettier.", "biome": "Lint and format with biome.",
    "rustfmt": "Format Rust with rustfmt (cargo fmt).", "clippy": "Keep cargo clippy clean.",
    "gofmt": "Format Go with gofmt.", "golangci-lint": "Lint Go with golangci-lint.",
    "rubocop": "Follow rubocop's rules.", "clang-format": "Format C/C++ with clang-format.",
    "editorconfig": "Follow .editorconfig (indentation, line endings).", "typescript": "TypeScript: keep tsc clean.",
    "pre-commit": "Run pre-commit before committing.", "php-cs-fixer": "Format PHP with php-cs-fixer.",
}


def summary_data(reader: IndexReader) -> dict[str, Any]:
    snapshot = reader.snapshot()
    project = reader.store.meta("project") or {}
    last_run = reader.store.meta("last_run") or {}
    indexed = [path for path, record in snapshot.records.items() if not record.skipped]
    folders: Counter[str] = Counter(path.split("/", 1)[0] if "/" in path else "." for path in indexed)
    definitions = sum(len(d) for d in snapshot.definitions.values())
    names = [d.name for defs in snapshot.definitions.values() for d in defs if d.kind in ("function", "method")]
    snake = sum(1 for n in names if _SNAKE.match(n))
    camel = sum(1 for n in names if _CAMEL.match(n))
    style = [FORMATTER_HINTS[tool] for tool in project.get("tooling", []) if tool in FORMATTER_HINTS]
    if names and (snake or camel):
        convention = "snake_case" if snake >= camel else "camelCase"
        share = max(snake, camel) * 100 // max(1, snake + camel)
        style.append(f"Functions are named in {convention} ({share}% of multi-word names).")
    return {
        "generation": snapshot.generation,
        "files": len(indexed),
        "definitions": definitions,
        "languages": [{"language": lang, "files": files, "lines": lines}
                      for lang, files, lines in snapshot.language_mix()],
        "manifests": project.get("manifests", []),
        "frameworks": project.get("frameworks", []),
        "dependencies": project.get("dependencies", []),
        "tooling": project.get("tooling", []),
        "layout": [{"folder": folder, "files": count} for folder, count in sorted(folders.items())],
        "key_modules": [path for path, _ in ranked_files(reader, 10)],
        "most_referenced": [
            {"name": d.qualified, "kind": d.kind, "path": d.path, "line": d.line, "references": count}
            for d, count in snapshot.most_referenced(15)
        ],
        "tests": {
            "command": project.get("test_command"),
            "files": len(snapshot.test_files()),
            "functions": len(snapshot.test_functions()),
        },
        "style": style,
        "skipped": dict(sorted(snapshot.skipped().items())),
        "last_run": last_run,
    }


def project_summary_text(reader: IndexReader) -> str:
    data = summary_data(reader)
    languages = ", ".join(f"{l['language']} ({l['files']} files, {l['lines']} lines)" for l in data["languages"])
    lines = [
        f"Indexed files: {data['files']}, definitions: {data['definitions']}.",
        f"Languages: {languages or 'none'}.",
        f"Manifests: {', '.join(data['manifests']) or 'none'}.",
        f"Frameworks: {', '.join(data['frameworks']) or 'none detected'}.",
        f"Dependencies: {', '.join(data['dependencies'][:40]) or 'none'}"
        + (f" (+{len(data['dependencies']) - 40} more)" if len(data["dependencies"]) > 40 else "") + ".",
        f"Tooling: {', '.join(data['tooling']) or 'none detected'}.",
        "Layout: " + ", ".join(f"{f['folder']}/ ({f['files']})" for f in data["layout"]) + ".",
        "Key modules: " + (", ".join(data["key_modules"]) or "none") + ".",
        "Most referenced: " + (", ".join(f"{m['name']} ({m['path']}:{m['line']}, {m['references']} refs)"
                                          for m in data["most_referenced"][:10]) or "none") + ".",
        (f"Tests: {data['tests']['files']} test files, {data['tests']['functions']} test functions; "
         f"run them with: {data['tests']['command'] or 'no test command detected'}."),
    ]
    if data["style"]:
        lines.append("Style: " + " ".join(data["style"]))
    if data["skipped"]:
        lines.append("Skipped files: " + ", ".join(f"{k} {v}" for k, v in data["skipped"].items()) + ".")
    return "\n".join(lines)
