"""What the index knows about one file, as small frozen records that pack to msgpack-ready tuples."""

from __future__ import annotations

from typing import Any

import attrs

# Kinds a definition can have, normalised across languages.
CLASS_LIKE = frozenset({"class", "struct", "interface", "trait", "enum", "impl", "module", "object"})


@attrs.frozen(kw_only=True)
class Definition:
    name: str
    kind: str  # class, function, method, interface, struct, enum, trait, type, module, namespace, constant, macro
    path: str  # relative to the workspace, with forward slashes
    line: int  # 1-based
    column: int  # 0-based, in bytes
    end_line: int
    end_column: int
    scope: str  # the enclosing definition's dotted name ("" at file level)
    signature: str  # the definition's first line, stripped and shortened

    @property
    def qualified(self) -> str:
        return f"{self.scope}.{self.name}" if self.scope else self.name

    def pack(self) -> list[Any]:
        return [self.name, self.kind, self.line, self.column, self.end_line, self.end_column, self.scope,
                self.signature]

    @classmethod
    def unpack(cls, path: str, row: list[Any]) -> Definition:
        name, kind, line, column, end_line, end_column, scope, signature = row
        return cls(name=name, kind=kind, path=path, line=line, column=column, end_line=end_line,
                   end_column=end_column, scope=scope, signature=signature)


@attrs.frozen(kw_only=True)
class Reference:
    name: str
    kind: str  # call, class, type, implementation, interface, macro
    path: str
    line: int
    column: int
    scope: str  # the definition the reference sits in ("" at file level)

    def pack(self) -> list[Any]:
        return [self.name, self.kind, self.line, self.column, self.scope]

    @classmethod
    def unpack(cls, path: str, row: list[Any]) -> Reference:
        name, kind, line, column, scope = row
        return cls(name=name, kind=kind, path=path, line=line, column=column, scope=scope)


@attrs.frozen(kw_only=True)
class FileFacts:
    """Everything extracted from one file's bytes."""

    path: str
    language: str
    lines: int
    definitions: tuple[Definition, ...] = ()
    references: tuple[Reference, ...] = ()
    imports: tuple[str, ...] = ()
    parse_errors: bool = False  # tree-sitter recovered from syntax errors; facts may be partial

    def pack(self) -> dict[str, Any]:
        return {
            "language": self.language,
            "lines": self.lines,
            "definitions": [d.pack() for d in self.definitions],
            "references": [r.pack() for r in self.references],
            "imports": list(self.imports),
            "parse_errors": self.parse_errors,
        }

    @classmethod
    def unpack(cls, path: str, packed: dict[str, Any]) -> FileFacts:
        return cls(
            path=path,
            language=packed["language"],
            lines=packed["lines"],
            definitions=tuple(Definition.unpack(path, row) for row in packed["definitions"]),
            references=tuple(Reference.unpack(path, row) for row in packed["references"]),
            imports=tuple(packed["imports"]),
            parse_errors=packed["parse_errors"],
        )
