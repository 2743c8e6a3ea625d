"""Personalised PageRank by power iteration over a small weighted graph, in plain Python.

Nodes are strings; ``edges[a][b]`` is the weight of a -> b.  Rank that reaches a node with no way out
(dangling) goes back to the personalisation, as does the (1 - damping) share at every step.  Iteration
order is sorted, so the same graph always gives the same floats: the repo map's text depends on it.
"""

from __future__ import annotations

from collections.abc import Mapping

DAMPING = 0.85


def pagerank(
    nodes: list[str],
    edges: Mapping[str, Mapping[str, float]],
    personalization: Mapping[str, float] | None = None,
    *,
    iterations: int = 50,
    tolerance: float = 1e-9,
) -> dict[str, float]:
    if not nodes:
        return {}
    ordered = sorted(nodes)
    weights = {node: personalization.get(node, 0.0) for node in ordered} if personalization else {}
    total = sum(weights.values())
    if total <= 0:
        seed = {node: 1.0 / len(ordered) for node in ordered}
    else:
        seed = {node: weight / total for node, weight in weights.items()}
    out_totals = {node: sum(edges.get(node, {}).values()) for node in ordered}
    outgoing = {node: sorted(edges.get(node, {}).items()) for node in ordered}
    rank = dict(seed)
    for _ in range(iterations):
        dangling = sum(rank[node] for node in ordered if out_totals[node] <= 0)
        following = {node: 0.0 for node in ordered}
        for node in ordered:
            share = out_totals[node]
            if share <= 0:
                continue
            flow = rank[node] / share
            for target, weight in outgoing[node]:
                if target in following:
                    following[target] += flow * weight
        new = {
            node: (1 - DAMPING) * seed[node] + DAMPING * (following[node] + dangling * seed[node])
            for node in ordered
        }
        change = sum(abs(new[node] - rank[node]) for node in ordered)
        rank = new
        if change < tolerance:
            break
    return rank
