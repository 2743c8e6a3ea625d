"""The repo map: the definitions most relevant to a question, ranked and fitted to a token budget.

Files are nodes; a file that references a name points at each file defining it, weighted by how often it
refers to it and divided among the definers (a name defined in many places says little about any one).
Personalised PageRank, seeded by the files and names the question mentions, ranks the files; each file's
rank flows along its edges to the (file, name) definitions it uses, which ranks the definitions.  The map
lists as many of the best as fit the budget, found by binary search over how many to show.

The text depends only on the index and the seeds (sorted iteration, ties broken by path and line), so an
unchanged index gives byte-identical maps and the upstream's prompt cache keeps hitting.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Iterable

import attrs

from lynkr.index.facts import Definition
from lynkr.index.pagerank import pagerank
from lynkr.index.symbols import IndexReader, Snapshot, paths_matching

CHARS_PER_TOKEN = 4  # a conservative estimate for code; no tokenizer download needed
AMBIGUOUS_DEFINERS = 40  # a name defined in more files than this carries no signal unless asked for
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{2,}")
_PATH_LIKE = re.compile(r"[\w./-]+\.[A-Za-z]{1,5}\b")

# (referencing file, defining file, name, weight)
Contribution = tuple[str, str, str, float]


@attrs.frozen(kw_only=True)
class Seeds:
    files: tuple[str, ...] = ()
    names: tuple[str, ...] = ()


def seeds_from(snapshot: Snapshot, *, text: str = "", files: Iterable[str] = (), names: Iterable[str] = ()
               ) -> Seeds:
    """The indexed files and defined names that ``text``, ``files`` and ``names`` mention."""
    mentioned_files = [*files, *_PATH_LIKE.findall(text)]
    found_files = paths_matching(snapshot, mentioned_files)
    mentioned_names = [*names, *_IDENTIFIER.findall(text)]
    found_names = sorted({name for name in mentioned_names if name in snapshot.by_name})
    return Seeds(files=tuple(sorted(found_files)), names=tuple(found_names))


def _contributions(snapshot: Snapshot) -> list[Contribution]:
    found: list[Contribution] = []
    for name in sorted(snapshot.ref_paths):
        definitions = snapshot.by_name.get(name)
        if not definitions:
            continue
        definers = sorted({d.path for d in definitions})
        if len(definers) > AMBIGUOUS_DEFINERS:
            continue
        scale = _specificity(name) / len(definers)
        for source, count in sorted(snapshot.ref_paths[name].items()):
            for target in definers:
                if target != source:
                    found.append((source, target, name, math.sqrt(count) * scale))
    return found


def _specificity(name: str) -> float:
    """How much a reference by this name says: long compound names are specific, ``get`` or ``_x`` are not."""
    if name.startswith("_"):
        return 0.1
    compound = "_" in name.strip("_") or (name[:1].islower() and any(c.isupper() for c in name))
    if len(name) >= 8 and compound:
        return 3.0
    if len(name) < 5 and name.islower():
        return 0.2
    return 1.0


def rank_definitions(reader: IndexReader, seeds: Seeds) -> list[Definition]:
    """Every definition worth showing, best first."""
    snapshot = reader.snapshot()
    contributions = reader.cached("contributions", snapshot.generation)
    if contributions is None:
        contributions = _contributions(snapshot)
        reader.remember("contributions", snapshot.generation, contributions)
    wanted = set(seeds.names)
    edges: dict[str, dict[str, float]] = defaultdict(dict)
    for source, target, name, weight in contributions:
        boosted = weight * (10.0 if name in wanted else 1.0)
        edges[source][target] = edges[source].get(target, 0.0) + boosted
    nodes = sorted(set(snapshot.definitions) | set(edges))
    personalization: dict[str, float] = {path: 1.0 for path in seeds.files}
    for name in seeds.names:
        for definition in snapshot.by_name.get(name, ()):
            personalization[definition.path] = personalization.get(definition.path, 0.0) + 1.0
    ranks = pagerank(nodes, edges, personalization or None)
    out_totals = {source: sum(targets.values()) for source, targets in edges.items()}
    score: dict[tuple[str, str], float] = defaultdict(float)
    for source, target, name, weight in contributions:
        boosted = weight * (10.0 if name in wanted else 1.0)
        score[(target, name)] += ranks.get(source, 0.0) * boosted / out_totals[source]
    seeded = set(seeds.files)
    for path, definitions in snapshot.definitions.items():
        # A file's own rank lifts all its definitions a little, so a seeded file that nobody references
        # still shows what it defines.
        if definitions:
            share = ranks.get(path, 0.0) * 0.1 / len(definitions)
            for definition in definitions:
                bonus = (1.0 if definition.name in wanted else 0.0) + (0.5 * _specificity(definition.name) / len(definitions) if path in seeded else 0.0)
                score[(path, definition.name)] += share + bonus
    ordered = sorted(score.items(), key=lambda item: (-item[1], item[0][0], item[0][1]))
    chosen: list[Definition] = []
    for (path, name), _ in ordered:
        chosen.extend(d for d in snapshot.definitions.get(path, ()) if d.name == name)
    return chosen


def render(definitions: Iterable[Definition], snapshot: Snapshot) -> str:
    """Definitions grouped by file in line order; a method brings its enclosing class's line for context."""
    by_path: dict[str, set[Definition]] = defaultdict(set)
    for definition in definitions:
        chosen = by_path[definition.path]
        chosen.add(definition)
        if definition.scope:
            enclosing = {d.qualified: d for d in snapshot.definitions.get(definition.path, ())}
            scope = definition.scope
            while scope:
                parent = enclosing.get(scope)
                if parent is not None:
                    chosen.add(parent)
                scope = scope.rpartition(".")[0]
    lines: list[str] = []
    for path in sorted(by_path):
        lines.append(f"{path}:")
        for definition in sorted(by_path[path], key=lambda d: (d.line, d.column)):
            depth = definition.scope.count(".") + 1 if definition.scope else 0
            lines.append(f"{definition.line:>5}│ {'  ' * depth}{definition.signature}")
    return "\n".join(lines) + ("\n" if lines else "")


def estimate_tokens(text: str) -> int:
    return -(-len(text) // CHARS_PER_TOKEN)


def fit(ranked: list[Definition], budget_tokens: int, snapshot: Snapshot) -> str:
    """The map of as many of the best definitions as fit ``budget_tokens`` (binary search on the count)."""
    low, high = 0, len(ranked)
    while low < high:
        middle = (low + high + 1) // 2
        if estimate_tokens(render(ranked[:middle], snapshot)) <= budget_tokens:
            low = middle
        else:
            high = middle - 1
    return render(ranked[:low], snapshot)


def repo_map(reader: IndexReader, *, text: str = "", files: Iterable[str] = (), names: Iterable[str] = (),
             budget_tokens: int = 1024) -> str:
    snapshot = reader.snapshot()
    seeds = seeds_from(snapshot, text=text, files=files, names=names)
    key = f"map:{seeds.files}:{seeds.names}:{budget_tokens}"
    cached = reader.cached(key, snapshot.generation)
    if isinstance(cached, str):
        return cached
    result = fit(rank_definitions(reader, seeds), budget_tokens, snapshot)
    reader.remember(key, snapshot.generation, result)
    return result


def ranked_files(reader: IndexReader, limit: int = 10) -> list[tuple[str, float]]:
    """The files the rest of the workspace leans on most (PageRank with no seeds)."""
    snapshot = reader.snapshot()
    cached = reader.cached("ranked_files", snapshot.generation)
    if cached is None:
        contributions = reader.cached("contributions", snapshot.generation)
        if contributions is None:
            contributions = _contributions(snapshot)
            reader.remember("contributions", snapshot.generation, contributions)
        edges: dict[str, dict[str, float]] = defaultdict(dict)
        for source, target, _, weight in contributions:
            edges[source][target] = edges[source].get(target, 0.0) + weight
        ranks = pagerank(sorted(set(snapshot.definitions) | set(edges)), edges)
        cached = sorted(ranks.items(), key=lambda item: (-item[1], item[0]))
        reader.remember("ranked_files", snapshot.generation, cached)
    return list(cached[:limit])
