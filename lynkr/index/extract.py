"""Facts from one file's bytes: sans-IO, no trio, no file system.

A language's tag query names what to take with captures: ``name.definition.<kind>`` (with the whole node as
``definition.<kind>``), ``name.reference.<kind>``, ``import.module``, and ``scope`` / ``name.scope`` for a
block that names a scope without being a definition itself (a Rust ``impl``), and ``definition.scope`` for
a definition whose scope is written beside it rather than around it (a Go receiver, C++'s ``Cache::get``).  Where several patterns capture
the same name, the earliest pattern wins, so a query lists its specific patterns before its broad ones.
A broad reference pattern (every ``type_identifier``) also hits the names of definitions: those are dropped.
"""

from __future__ import annotations

from typing import NamedTuple

import tree_sitter

from lynkr.index.facts import CLASS_LIKE, Definition, FileFacts, Reference
from lynkr.index.languages import has_query, parser_and_query

SIGNATURE_LIMIT = 160  # characters of a definition's first line kept as its signature
_QUOTES = "\"'`<>"


class _Provider(NamedTuple):
    start: int
    end: int
    order: int  # pattern index: the earlier pattern wins a tie
    name: str
    kind: str
    name_node: tree_sitter.Node
    node: tree_sitter.Node
    is_definition: bool
    written_scope: str  # "" unless the definition names its own scope


def count_lines(source: bytes) -> int:
    if not source:
        return 0
    return source.count(b"\n") + (0 if source.endswith(b"\n") else 1)


def extract(path: str, language: str, source: bytes) -> FileFacts:
    """The definitions, references and imports of ``source``; file-level facts for a language with no query.

    ``source`` must be UTF-8 (the caller skips files that are not).
    """
    lines = count_lines(source)
    if not has_query(language):
        return FileFacts(path=path, language=language, lines=lines)
    parser, query = parser_and_query(language)
    tree = parser.parse(source)
    providers: dict[int, _Provider] = {}  # by the name node's start byte
    references: dict[int, tuple[int, str, tree_sitter.Node]] = {}
    imports: list[str] = []
    for pattern, captures in tree_sitter.QueryCursor(query).matches(tree.root_node):
        for capture, nodes in captures.items():
            if capture.startswith("name.definition.") or capture == "name.scope":
                kind = capture.removeprefix("name.definition.") if capture != "name.scope" else "impl"
                outer_key = f"definition.{kind}" if capture != "name.scope" else "scope"
                name_node = nodes[0]
                outer = captures.get(outer_key, nodes)[0]
                written = captures.get("definition.scope")
                known = providers.get(name_node.start_byte)
                if known is None or pattern < known.order:
                    providers[name_node.start_byte] = _Provider(
                        outer.start_byte, outer.end_byte, pattern, _text(source, name_node), kind, name_node, outer,
                        capture != "name.scope", _text(source, written[0]) if written else "",
                    )
            elif capture.startswith("name.reference."):
                for node in nodes:
                    seen = references.get(node.start_byte)
                    if seen is None or pattern < seen[0]:
                        references[node.start_byte] = (pattern, capture.removeprefix("name.reference."), node)
            elif capture == "import.module":
                imports.extend(" ".join(_text(source, node).strip(_QUOTES).split()) for node in nodes)
    definitions, reference_records = _resolve_scopes(path, source, providers, references)
    return FileFacts(
        path=path,
        language=language,
        lines=lines,
        definitions=definitions,
        references=reference_records,
        imports=tuple(dict.fromkeys(i for i in imports if i)),
        parse_errors=tree.root_node.has_error,
    )


def _resolve_scopes(
    path: str,
    source: bytes,
    providers: dict[int, _Provider],
    references: dict[int, tuple[int, str, tree_sitter.Node]],
) -> tuple[tuple[Definition, ...], tuple[Reference, ...]]:
    """Give each definition and reference its enclosing scope, in one sweep ordered by position.

    A stack holds the scopes open at the current position; sorting outer-before-inner on equal starts makes
    the sweep linear instead of a containment test of every item against every scope.
    """
    items: list[tuple[int, int, int, _Provider | tuple[str, tree_sitter.Node]]] = []
    for provider in providers.values():
        items.append((provider.start, -provider.end, 0, provider))
    for start, (_, kind, node) in references.items():
        if start not in providers:  # the name of a definition, hit by a broad pattern
            items.append((start, -node.end_byte, 1, (kind, node)))
    items.sort(key=lambda item: (item[0], item[1], item[2]))
    stack: list[tuple[int, str, str]] = []  # (end byte, qualified name, kind)
    definitions: list[Definition] = []
    found: list[Reference] = []
    for start, _, _, item in items:
        while stack and stack[-1][0] <= start:
            stack.pop()
        scope, scope_kind = (stack[-1][1], stack[-1][2]) if stack else ("", "")
        if isinstance(item, _Provider):
            if item.written_scope:
                scope = f"{scope}.{item.written_scope}" if scope else item.written_scope
            kind = "method" if item.kind == "function" and scope_kind in CLASS_LIKE else item.kind
            if item.is_definition:
                node = item.node
                definitions.append(
                    Definition(
                        name=item.name,
                        kind=kind,
                        path=path,
                        line=node.start_point.row + 1,
                        column=node.start_point.column,
                        end_line=node.end_point.row + 1,
                        end_column=node.end_point.column,
                        scope=scope,
                        signature=_signature(source, node),
                    )
                )
            qualified = f"{scope}.{item.name}" if scope and item.is_definition else item.name
            stack.append((item.end, qualified, kind))
        else:
            kind, node = item
            found.append(
                Reference(
                    name=_text(source, node),
                    kind=kind,
                    path=path,
                    line=node.start_point.row + 1,
                    column=node.start_point.column,
                    scope=scope,
                )
            )
    return tuple(definitions), tuple(found)


def _text(source: bytes, node: tree_sitter.Node) -> str:
    return source[node.start_byte : node.end_byte].decode("utf-8", "replace")


def _signature(source: bytes, node: tree_sitter.Node) -> str:
    end = source.find(b"\n", node.start_byte, node.end_byte)
    first = source[node.start_byte : end if end != -1 else node.end_byte].decode("utf-8", "replace").strip()
    return first if len(first) <= SIGNATURE_LIMIT else first[: SIGNATURE_LIMIT - 1] + "…"
