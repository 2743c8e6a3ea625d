"""A persistent (immutable, structure-sharing) hash map for fold state.

Projections are pure: ``apply(state, event)`` returns a new state and leaves the old one intact.  With a
plain dict that means copying every entry on every event, which makes replaying a log with thousands of
sessions quadratic.  :class:`PMap` is a two-level radix tree over the keys' hashes (32 x 32 branches, small
dicts at the leaves): :meth:`PMap.set` copies one path of two 64-slot tuples and one small leaf, and shares
everything else with the map it came from.

Leaves are dicts that are never mutated after construction.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")

_BITS = 5  # 32 x 32: copying two 32-slot tuples per set beats two 64-slot ones, even with fuller leaves
_WIDTH = 1 << _BITS
_MASK = _WIDTH - 1

_Leaf = dict[K, V]
_Branch = tuple["_Leaf[K, V] | None", ...]
_Root = tuple["_Branch[K, V] | None", ...]

_EMPTY: tuple[None, ...] = (None,) * _WIDTH


class PMap(Mapping[K, V], Generic[K, V]):
    """An immutable mapping whose :meth:`set` returns a new map sharing structure with this one."""

    __slots__ = ("_root", "_len")

    def __init__(self) -> None:
        self._root: _Root[K, V] = _EMPTY
        self._len = 0

    def set(self, key: K, value: V) -> PMap[K, V]:
        """A map like this one with ``key`` bound to ``value``."""
        hashed = hash(key)
        i, j = hashed & _MASK, (hashed >> _BITS) & _MASK
        root = self._root
        branch = root[i] or _EMPTY
        leaf = branch[j]
        if leaf is None:
            new_leaf: _Leaf[K, V] = {key: value}
            grown = 1
        else:
            grown = 0 if key in leaf else 1
            new_leaf = leaf.copy()
            new_leaf[key] = value
        # Copying through a list makes one new tuple per level; slicing and concatenating makes five.
        leaves: list[_Leaf[K, V] | None] = list(branch)
        leaves[j] = new_leaf
        branches: list[_Branch[K, V] | None] = list(root)
        branches[i] = tuple(leaves)
        new: PMap[K, V] = PMap.__new__(PMap)
        new._root = tuple(branches)
        new._len = self._len + grown
        return new

    def delete(self, key: K) -> PMap[K, V]:
        """A map like this one without ``key`` (this very map when it has no such key)."""
        hashed = hash(key)
        i, j = hashed & _MASK, (hashed >> _BITS) & _MASK
        branch = self._root[i]
        leaf = None if branch is None else branch[j]
        if branch is None or leaf is None or key not in leaf:
            return self
        new_leaf: _Leaf[K, V] | None = {k: v for k, v in leaf.items() if k != key} or None
        leaves: list[_Leaf[K, V] | None] = list(branch)
        leaves[j] = new_leaf
        branches: list[_Branch[K, V] | None] = list(self._root)
        branches[i] = tuple(leaves)
        new: PMap[K, V] = PMap.__new__(PMap)
        new._root = tuple(branches)
        new._len = self._len - 1
        return new

    def get(self, key: K, default: V | None = None) -> V | None:  # type: ignore[override]
        hashed = hash(key)
        branch = self._root[hashed & _MASK]
        if branch is not None:
            leaf = branch[(hashed >> _BITS) & _MASK]
            if leaf is not None:
                return leaf.get(key, default)
        return default

    def __getitem__(self, key: K) -> V:
        hashed = hash(key)
        branch = self._root[hashed & _MASK]
        if branch is not None:
            leaf = branch[(hashed >> _BITS) & _MASK]
            if leaf is not None:
                return leaf[key]
        raise KeyError(key)

    def __iter__(self) -> Iterator[K]:
        for branch in self._root:
            if branch is not None:
                for leaf in branch:
                    if leaf is not None:
                        yield from leaf

    def __len__(self) -> int:
        return self._len

    def __repr__(self) -> str:
        return f"PMap({dict(self.items())!r})"
