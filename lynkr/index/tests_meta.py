"""Which files are tests and which definitions are test functions, by each ecosystem's conventions."""

from __future__ import annotations

import re
from pathlib import PurePosixPath

from lynkr.index.facts import Definition

_TEST_FILE = re.compile(
    r"(^|/)(test_[^/]*\.py|[^/]*_test\.(py|go|rb|exs?)|[^/]*\.(test|spec)\.(js|jsx|ts|tsx|mjs|cjs)"
    r"|[^/]*(Test|Tests|Spec)\.(java|kt|cs|php|scala)|[^/]*_spec\.rb|conftest\.py)$"
)
_TEST_FOLDERS = frozenset({"tests", "test", "__tests__", "spec", "specs"})
_TEST_NAME = re.compile(r"^(test|Test|it_|should)")


def is_test_file(path: str) -> bool:
    if _TEST_FILE.search(path):
        return True
    return any(part in _TEST_FOLDERS for part in PurePosixPath(path).parts[:-1]) and not path.endswith(".md")


def is_test_function(definition: Definition) -> bool:
    return definition.kind in ("function", "method") and bool(_TEST_NAME.match(definition.name))
