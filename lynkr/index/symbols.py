"""The index held in memory for queries, kept in step with the store by generation.

Each query first asks the store which generation it is at; when it moved, only the files changed since are
reloaded (the store keeps a list of changed paths per generation), so a saved file is queryable within one
LMDB read of it.  Readers in other processes (``lynkr index ...``) work the same way: LMDB readers never
wait for the writer.

Only what queries need stays in memory: definitions, and per file the names it references with their
counts (for the ranking graph).  Reference positions are read from the store when asked for.
"""

from __future__ import annotations

import bisect
import itertools
import re
import threading
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import attrs

from lynkr.index.facts import Definition, Reference
from lynkr.index.store import FileRecord, IndexStore
from lynkr.index.tests_meta import is_test_file, is_test_function


@attrs.frozen(kw_only=True)
class Match:
    definition: Definition
    tier: int  # 0 exact, 1 exact ignoring case, 2 prefix, 3 substring, 4 fuzzy
    language: str


class IndexReader:
    """Queries over the index.  Thread-safe: tools call it through ``trio.to_thread.run_sync``."""

    def __init__(self, store: IndexStore) -> None:
        self.store = store
        self._lock = threading.RLock()
        self._generation = -1
        self._records: dict[str, FileRecord] = {}
        self._definitions: dict[str, tuple[Definition, ...]] = {}
        self._referenced: dict[str, Counter[str]] = {}  # path -> name -> count
        self._imports: dict[str, tuple[str, ...]] = {}
        self._lines: dict[str, int] = {}
        self._by_name: dict[str, list[Definition]] = {}
        self._ref_paths: dict[str, Counter[str]] = {}  # name -> path -> count
        self._names: list[str] = []  # sorted, lower case
        self._names_blob = ""
        self._name_starts: list[int] = []
        self._original: dict[str, list[str]] = {}  # lower case name -> names as written
        self._names_dirty = True
        self._cache: dict[str, Any] = {}  # per-generation results (the ranking graph)

    @classmethod
    def open(cls, data_dir: Path) -> IndexReader:
        """A reader of the index under ``data_dir`` (read-only; the daemon may be writing)."""
        return cls(IndexStore.open(data_dir, readonly=True))

    # Keeping in step

    def refresh(self) -> int:
        with self._lock:
            current, changed = self.store.changed_since(self._generation)
            if current == self._generation:
                return current
            if changed is None:
                self._load_all()
            else:
                self._reload(changed)
            self._generation = current
            self._cache.clear()
            return current

    def generation(self) -> int:
        return self.refresh()

    def _load_all(self) -> None:
        self._records = self.store.records()
        self._definitions, self._referenced, self._imports, self._lines = {}, {}, {}, {}
        self._by_name, self._ref_paths, self._original = {}, {}, {}
        for path, packed in self.store.packed_facts():
            self._add(path, packed)
        self._names_dirty = True

    def _reload(self, paths: set[str]) -> None:
        for path in paths:
            self._remove(path)
            record = self.store.record(path)
            if record is None:
                self._records.pop(path, None)
            else:
                self._records[path] = record
        for path, packed in self.store.packed_facts(sorted(paths)):
            self._add(path, packed)
        self._names_dirty = True

    def _add(self, path: str, packed: dict[str, Any]) -> None:
        definitions = tuple(Definition.unpack(path, row) for row in packed["definitions"])
        self._definitions[path] = definitions
        self._imports[path] = tuple(packed["imports"])
        self._lines[path] = packed["lines"]
        for definition in definitions:
            siblings = self._by_name.get(definition.name)
            if siblings is None:
                self._by_name[definition.name] = [definition]
                self._original.setdefault(definition.name.lower(), []).append(definition.name)
            else:
                siblings.append(definition)
        counts = Counter(row[0] for row in packed["references"])
        self._referenced[path] = counts
        for name, count in counts.items():
            self._ref_paths.setdefault(name, Counter())[path] = count

    def _remove(self, path: str) -> None:
        for definition in self._definitions.pop(path, ()):
            siblings = self._by_name.get(definition.name)
            if siblings is not None:
                siblings[:] = [d for d in siblings if d.path != path]
                if not siblings:
                    del self._by_name[definition.name]
                    spellings = self._original[definition.name.lower()]
                    spellings.remove(definition.name)
                    if not spellings:
                        del self._original[definition.name.lower()]
        for name in self._referenced.pop(path, Counter()):
            holders = self._ref_paths.get(name)
            if holders is not None:
                holders.pop(path, None)
                if not holders:
                    del self._ref_paths[name]
        self._imports.pop(path, None)
        self._lines.pop(path, None)

    def _ensure_names(self) -> None:
        """Rebuild the sorted names and their blob, for the prefix, substring and fuzzy tiers only.

        Exact lookups never wait for this, so a saved file is found by name without it.  Each step is one C
        call (sort, join, accumulate) over the distinct names: a Python loop here cost ~100 ms on 40k names.
        """
        if not self._names_dirty:
            return
        self._names = sorted(self._original)
        # One newline-separated string: substring and fuzzy matching then run in the regex engine's C loop
        # instead of a Python loop over every name.
        self._names_blob = "\n" + "\n".join(self._names) + "\n"
        self._name_starts = list(itertools.accumulate(map(len, self._names), lambda at, n: at + n + 1, initial=1))
        self._names_dirty = False

    # Queries

    def search(
        self,
        query: str,
        *,
        kinds: Iterable[str] = (),
        languages: Iterable[str] = (),
        exact: bool = False,
        limit: int = 20,
    ) -> list[Match]:
        """Definitions whose name matches ``query``: exact, then prefix, substring and fuzzy, best first.

        ``Scope.name`` (or ``Scope::name``) matches ``name`` defined inside a scope ending in ``Scope``.
        """
        with self._lock:
            self.refresh()
            scope, name = _split_qualified(query.strip())
            if not name:
                return []
            wanted_kinds, wanted_languages = set(kinds), set(languages)
            found: list[tuple[tuple[int, int, int, str], Match]] = []
            for tier, names in enumerate(self._name_tiers(name, exact=exact)):
                # Shorter names rank first within a tier, so names are taken a length at a time and the
                # search stops once the limit is met: a prefix like "get" may match thousands of names.
                by_length: dict[int, list[str]] = {}
                for written in names:
                    by_length.setdefault(len(written), []).append(written)
                for length in sorted(by_length):
                    for written in by_length[length]:
                        popularity = self._popularity(written)
                        for definition in self._by_name.get(written, ()):
                            record = self._records.get(definition.path)
                            language = record.language if record is not None else ""
                            if wanted_kinds and definition.kind not in wanted_kinds:
                                continue
                            if wanted_languages and language not in wanted_languages:
                                continue
                            if scope and not _in_scope(definition, scope):
                                continue
                            key = (tier, length, -popularity, f"{definition.path}:{definition.line:09d}")
                            found.append((key, Match(definition=definition, tier=tier, language=language)))
                    if len(found) >= limit:
                        break
                # Later tiers rank below every match found so far: once the limit is met, stop looking.
                if len(found) >= limit:
                    break
            found.sort(key=lambda item: item[0])
            return [match for _, match in found[:limit]]

    def _popularity(self, name: str) -> int:
        holders = self._ref_paths.get(name)
        return 0 if holders is None else len(holders)

    def _name_tiers(self, name: str, *, exact: bool) -> Iterator[list[str]]:
        """Names matching ``name``, one list per tier, each computed only when the earlier ones fell short."""
        lower = name.lower()
        yield [name] if name in self._by_name else []
        yield [n for n in self._original.get(lower, []) if n != name]
        if exact:
            return
        self._ensure_names()
        index = bisect.bisect_left(self._names, lower)
        prefix: list[str] = []
        seen = {lower}
        while index < len(self._names) and self._names[index].startswith(lower):
            if self._names[index] != lower:
                prefix.extend(sorted(self._original[self._names[index]]))
                seen.add(self._names[index])
            index += 1
        yield prefix
        yield self._blob_matches(re.escape(lower), seen)
        if len(lower) > 1:
            # Fuzzy: the letters in order, starting at the name's first letter.  Anchoring at a name start lets
            # the regex engine skip to candidate lines instead of trying every position of the blob.
            pattern = "\n" + "[^\n]*?".join(re.escape(char) for char in lower)
            yield self._blob_matches(pattern, seen, offset=1)

    def _blob_matches(self, pattern: str, seen: set[str], cap: int = 2000, offset: int = 0) -> list[str]:
        names: list[str] = []
        last = -1
        for match in re.finditer(pattern, self._names_blob):
            index = bisect.bisect_right(self._name_starts, match.start() + offset) - 1
            if index == last or index < 0:
                continue
            last = index
            lower = self._names[index]
            if lower not in seen:
                seen.add(lower)
                names.extend(sorted(self._original[lower]))
                if len(names) >= cap:
                    break
        return names

    def definitions_of(self, query: str, *, path: str | None = None) -> list[Definition]:
        """Where ``query`` (a name, or ``Scope.name``) is defined; definitions in ``path`` first."""
        matches = self.search(query, exact=True, limit=200)
        exact_case = [m.definition for m in matches if m.tier == 0] or [m.definition for m in matches]
        return sorted(exact_case, key=lambda d: (d.path != path, d.path, d.line))

    def references_to(self, name: str, *, limit: int = 200) -> tuple[list[Reference], int]:
        """Where ``name`` is referenced (read from the store), at most ``limit``, and how many there are."""
        with self._lock:
            self.refresh()
            _, bare = _split_qualified(name)
            holders = self._ref_paths.get(bare, Counter())
            total = sum(holders.values())
            paths = sorted(holders)
        found: list[Reference] = []
        for facts in self.store.facts(paths):
            found.extend(r for r in facts.references if r.name == bare)
            if len(found) >= limit:
                break
        return found[:limit], total

    def file_definitions(self, path: str) -> tuple[Definition, ...]:
        with self._lock:
            self.refresh()
            return self._definitions.get(path, ())

    def snapshot(self) -> Snapshot:
        """The whole index as plain maps, for ranking and summaries (valid for this generation)."""
        with self._lock:
            generation = self.refresh()
            cached = self._cache.get("snapshot")
            if cached is None:
                cached = Snapshot(
                    generation=generation,
                    records=dict(self._records),
                    definitions=dict(self._definitions),
                    referenced=dict(self._referenced),
                    imports=dict(self._imports),
                    lines=dict(self._lines),
                    by_name={name: tuple(defs) for name, defs in self._by_name.items()},
                    ref_paths={name: dict(paths) for name, paths in self._ref_paths.items()},
                )
                self._cache["snapshot"] = cached
            assert isinstance(cached, Snapshot)
            return cached

    def cached(self, key: str, generation: int) -> Any:
        with self._lock:
            return self._cache.get(key) if generation == self._generation else None

    def remember(self, key: str, generation: int, value: Any) -> None:
        with self._lock:
            if generation == self._generation:
                self._cache[key] = value

    def close(self) -> None:
        self.store.close()


@attrs.frozen(kw_only=True)
class Snapshot:
    generation: int
    records: dict[str, FileRecord]
    definitions: dict[str, tuple[Definition, ...]]
    referenced: dict[str, Counter[str]]
    imports: dict[str, tuple[str, ...]]
    lines: dict[str, int]
    by_name: dict[str, tuple[Definition, ...]]
    ref_paths: dict[str, dict[str, int]]

    def language_mix(self) -> list[tuple[str, int, int]]:
        """(language, files, lines) of indexed files, most lines first."""
        files: Counter[str] = Counter()
        lines: Counter[str] = Counter()
        for path, record in self.records.items():
            if not record.skipped:
                files[record.language] += 1
                lines[record.language] += self.lines.get(path, 0)
        return sorted(((lang, files[lang], lines[lang]) for lang in files), key=lambda t: (-t[2], -t[1], t[0]))

    def skipped(self) -> Counter[str]:
        return Counter(record.skipped for record in self.records.values() if record.skipped)

    def most_referenced(self, limit: int = 15) -> list[tuple[Definition, int]]:
        """Definitions others refer to most, by how many references name them (unambiguous names only)."""
        scored = []
        for name, defs in self.by_name.items():
            if len(defs) > 3 or len(name) < 3:
                continue  # a name defined in many places says little about any one of them
            count = sum(self.ref_paths.get(name, {}).values())
            if count:
                for definition in defs:
                    scored.append((count, definition.path, definition.line, definition))
        scored.sort(key=lambda item: (-item[0], item[1], item[2]))
        return [(definition, count) for count, _, _, definition in scored[:limit]]

    def test_files(self) -> list[str]:
        return sorted(path for path, record in self.records.items() if not record.skipped and is_test_file(path))

    def test_functions(self, limit: int | None = None) -> list[Definition]:
        found = [d for path in self.test_files() for d in self.definitions.get(path, ()) if is_test_function(d)]
        return found if limit is None else found[:limit]


def _in_scope(definition: Definition, scope: str) -> bool:
    """``scope`` ends the definition's scope, or names its module (``trio.run`` for ``run`` in trio/...)."""
    lowered = scope.lower()
    if definition.scope.lower().endswith(lowered):
        return True
    module = definition.path.rsplit(".", 1)[0].replace("/", ".").lower()
    return module.endswith(lowered) or f"{lowered}." in f"{module}." or module.startswith(lowered + ".")


def _split_qualified(query: str) -> tuple[str, str]:
    for separator in ("::", ".", "#", "->"):
        if separator in query:
            scope, _, name = query.rpartition(separator)
            return scope.replace("::", ".").replace("#", ".").replace("->", "."), name
    return "", query


def paths_matching(snapshot: Snapshot, candidates: Sequence[str]) -> list[str]:
    """Indexed paths that ``candidates`` name: exactly, or by a trailing part (``store.py``)."""
    indexed = sorted(snapshot.definitions)
    found: list[str] = []
    for candidate in candidates:
        clean = candidate.strip().lstrip("./")
        if clean in snapshot.definitions:
            found.append(clean)
            continue
        found.extend(path for path in indexed if path.endswith("/" + clean))
    return list(dict.fromkeys(found))
