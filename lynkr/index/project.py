"""Framework, tooling and test facts read from a workspace's manifests and config files.

Reading is tolerant: a manifest that does not parse contributes what it can and never fails the index.
Only the workspace's top folder is read: that is where a project declares itself.
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any, TypedDict

MANIFESTS = ("package.json", "pyproject.toml", "setup.py", "setup.cfg", "requirements.txt", "go.mod",
             "Cargo.toml", "pom.xml", "build.gradle", "build.gradle.kts", "Gemfile", "composer.json")
# Config file -> the tool it configures (lint, format, type check, test).
TOOL_CONFIGS: dict[str, str] = {
    ".eslintrc": "eslint", ".eslintrc.js": "eslint", ".eslintrc.json": "eslint", ".eslintrc.cjs": "eslint",
    "eslint.config.js": "eslint", "eslint.config.mjs": "eslint", ".prettierrc": "prettier",
    ".prettierrc.json": "prettier", "prettier.config.js": "prettier", "biome.json": "biome",
    "ruff.toml": "ruff", ".ruff.toml": "ruff", ".flake8": "flake8", ".pylintrc": "pylint", "mypy.ini": "mypy",
    "tox.ini": "tox", "pytest.ini": "pytest", ".editorconfig": "editorconfig", "rustfmt.toml": "rustfmt",
    ".rustfmt.toml": "rustfmt", "clippy.toml": "clippy", ".golangci.yml": "golangci-lint",
    ".golangci.yaml": "golangci-lint", ".rubocop.yml": "rubocop", ".clang-format": "clang-format",
    ".clang-tidy": "clang-tidy", "tsconfig.json": "typescript", "jest.config.js": "jest",
    "jest.config.ts": "jest", "vitest.config.ts": "vitest", "phpunit.xml": "phpunit", ".php-cs-fixer.php":
    "php-cs-fixer", ".pre-commit-config.yaml": "pre-commit", "detekt.yml": "detekt", ".stylelintrc": "stylelint",
}
WATCHED_NAMES = frozenset(MANIFESTS) | frozenset(TOOL_CONFIGS)
# Dependency name -> the framework it signals.
FRAMEWORKS: dict[str, str] = {
    "django": "Django", "flask": "Flask", "fastapi": "FastAPI", "trio": "trio", "pytest": "pytest",
    "sqlalchemy": "SQLAlchemy", "pydantic": "pydantic", "react": "React", "next": "Next.js", "vue": "Vue",
    "svelte": "Svelte", "@angular/core": "Angular", "express": "Express", "jest": "Jest", "vitest": "Vitest",
    "typescript": "TypeScript", "github.com/gin-gonic/gin": "Gin", "tokio": "Tokio", "actix-web": "Actix",
    "axum": "Axum", "serde": "serde", "rails": "Rails", "rspec": "RSpec", "sinatra": "Sinatra",
    "laravel/framework": "Laravel", "symfony/symfony": "Symfony", "org.springframework.boot": "Spring Boot",
    "junit": "JUnit",
}


class ProjectFacts(TypedDict):
    manifests: list[str]
    dependencies: list[str]
    frameworks: list[str]
    tooling: list[str]
    test_command: str | None


def scan_project(root: Path) -> ProjectFacts:
    manifests = [name for name in MANIFESTS if (root / name).is_file()]
    dependencies: dict[str, None] = {}
    tooling: dict[str, None] = {TOOL_CONFIGS[name]: None for name in sorted(TOOL_CONFIGS) if (root / name).is_file()}
    readers = {"package.json": _package_json, "pyproject.toml": _pyproject, "go.mod": _go_mod,
               "Cargo.toml": _cargo, "pom.xml": _pom, "Gemfile": _gemfile, "composer.json": _composer,
               "requirements.txt": _requirements}
    package_scripts: dict[str, Any] = {}
    for name in manifests:
        reader = readers.get(name)
        if reader is None:
            continue
        try:
            text = (root / name).read_text(errors="replace")
            found, tools = reader(text)
        except (OSError, ValueError, tomllib.TOMLDecodeError):
            continue
        dependencies.update(dict.fromkeys(found))
        tooling.update(dict.fromkeys(tools))
        if name == "package.json":
            package_scripts = _scripts(text)
    frameworks = sorted({FRAMEWORKS[dep] for dep in dependencies if dep in FRAMEWORKS}
                        | {FRAMEWORKS[d] for d in dependencies for key in FRAMEWORKS if d.startswith(key + ":")})
    return ProjectFacts(
        manifests=manifests,
        dependencies=sorted(dependencies),
        frameworks=frameworks,
        tooling=sorted(tooling),
        test_command=_test_command(root, manifests, dependencies, tooling, package_scripts),
    )


def _test_command(root: Path, manifests: list[str], dependencies: dict[str, None], tooling: dict[str, None],
                  scripts: dict[str, Any]) -> str | None:
    if isinstance(scripts.get("test"), str) and "no test specified" not in scripts["test"]:
        return "npm test"
    python = "pyproject.toml" in manifests or "setup.py" in manifests or "pytest" in tooling or "tox" in tooling
    has_tests = "pytest" in dependencies or "pytest" in tooling or (root / "tests").is_dir()
    if python and (has_tests or (root / "conftest.py").exists()):
        return "python -m pytest"
    if "go.mod" in manifests:
        return "go test ./..."
    if "Cargo.toml" in manifests:
        return "cargo test"
    if "pom.xml" in manifests:
        return "mvn test"
    if "build.gradle" in manifests or "build.gradle.kts" in manifests:
        return "./gradlew test" if (root / "gradlew").exists() else "gradle test"
    if "Gemfile" in manifests:
        return "bundle exec rspec" if "rspec" in dependencies else "bundle exec rake test"
    if "composer.json" in manifests:
        return "vendor/bin/phpunit"
    if any(root.glob("*.csproj")) or any(root.glob("*.sln")):
        return "dotnet test"
    return None


def _scripts(text: str) -> dict[str, Any]:
    data = json.loads(text)
    scripts = data.get("scripts") if isinstance(data, dict) else None
    return scripts if isinstance(scripts, dict) else {}


_REQUIREMENT_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def _requirement_names(items: Any) -> list[str]:
    names = []
    for item in items if isinstance(items, list) else []:
        match = _REQUIREMENT_NAME.match(str(item))
        if match:
            names.append(match.group(1).lower())
    return names


def _package_json(text: str) -> tuple[list[str], list[str]]:
    data = json.loads(text)
    found: list[str] = []
    for key in ("dependencies", "devDependencies", "peerDependencies"):
        section = data.get(key) if isinstance(data, dict) else None
        if isinstance(section, dict):
            found.extend(section)
    tools: list[str] = [tool for tool in ("eslint", "prettier", "jest", "vitest", "typescript", "biome") if tool in found]
    return found, tools


def _pyproject(text: str) -> tuple[list[str], list[str]]:
    data = tomllib.loads(text)
    project = data.get("project", {})
    found = _requirement_names(project.get("dependencies", []))
    for extra in (project.get("optional-dependencies") or {}).values():
        found.extend(_requirement_names(extra))
    poetry = data.get("tool", {}).get("poetry", {})
    found.extend(name.lower() for name in poetry.get("dependencies", {}) if name != "python")
    tools = [name for name in ("ruff", "black", "isort", "mypy", "pytest", "pylint", "flake8", "coverage")
             if name in data.get("tool", {})]
    return found, tools


def _requirements(text: str) -> tuple[list[str], list[str]]:
    lines = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith(("#", "-"))]
    return _requirement_names(lines), []


def _go_mod(text: str) -> tuple[list[str], list[str]]:
    return re.findall(r"^\s*(?:require\s+)?([\w.\-]+\.[\w.\-]+/[\w.\-/]+)\s+v", text, re.MULTILINE), ["gofmt"]


def _cargo(text: str) -> tuple[list[str], list[str]]:
    data = tomllib.loads(text)
    found = [*data.get("dependencies", {}), *data.get("dev-dependencies", {})]
    return found, ["cargo"]


def _pom(text: str) -> tuple[list[str], list[str]]:
    groups = re.findall(r"<groupId>\s*([^<\s]+)\s*</groupId>\s*<artifactId>\s*([^<\s]+)\s*</artifactId>", text)
    found = [f"{group}:{artifact}" for group, artifact in groups]
    if any(artifact.startswith("junit") for _, artifact in groups):
        found.append("junit")
    return found, ["maven"]


def _gemfile(text: str) -> tuple[list[str], list[str]]:
    found = re.findall(r"""^\s*gem\s+["']([^"']+)["']""", text, re.MULTILINE)
    return found, [tool for tool in ("rubocop", "rspec") if tool in found]


def _composer(text: str) -> tuple[list[str], list[str]]:
    data = json.loads(text)
    found = [*data.get("require", {}), *data.get("require-dev", {})] if isinstance(data, dict) else []
    return found, [tool for tool in ("phpunit/phpunit", "friendsofphp/php-cs-fixer") if tool in found]
