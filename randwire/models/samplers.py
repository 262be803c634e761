"""The built-in generators' algorithms (paper §3.2: ER, BA, WS; WS-flex of You et al. 2020), each drawing
only ``Generator.random()`` doubles from its stage's PCG64 stream, so (generator, params, N, seed) gives the
same edges on any machine and numpy version. Their records (checks, titles, axes) are in
:mod:`randwire.models.generators`. No torch here."""

from __future__ import annotations

import numpy as np

Edge = tuple[int, int]


def _uniform_index(rng: np.random.Generator, size: int) -> int:
    """A uniform integer in [0, size) from one stable double (Generator.integers' algorithm may change)."""
    return min(int(rng.random() * size), size - 1)


def er_edges(n: int, p: float, rng: np.random.Generator) -> list[Edge]:
    # §3.2 ER(P): every pair independently with probability P; then indices in a random order (§3.3).
    us, vs = np.triu_indices(n, 1)
    keep = rng.random(us.size) < p
    order = np.argsort(rng.random(n), kind="stable")  # a uniformly random permutation
    label = np.empty(n, dtype=np.int64)
    label[order] = np.arange(n)
    return [(int(min(a, b)), int(max(a, b))) for a, b in zip(label[us[keep]], label[vs[keep]])]


def ba_edges(n: int, m: int, rng: np.random.Generator) -> list[Edge]:
    # §3.2 BA(M): M initial nodes 0..M-1 with no edges; node v = M..N-1 is added with M distinct edges to
    # existing nodes chosen with probability proportional to degree. The first new node (all degrees 0)
    # joins all M initial nodes. reading: degrees are those before v is added; a repeat draw is redrawn.
    degree = np.zeros(n, dtype=np.float64)
    edges: list[Edge] = []
    for v in range(m, n):
        if v == m:
            targets = list(range(m))
        else:
            cdf = np.cumsum(degree[:v])
            chosen: set[int] = set()
            while len(chosen) < m:
                t = int(np.searchsorted(cdf, rng.random() * cdf[-1], side="right"))
                chosen.add(min(t, v - 1))
            targets = sorted(chosen)
        for t in targets:
            edges.append((t, v))
        degree[targets] += 1
        degree[v] += m
    return edges


def ws_edges(n: int, k: int, p: float, rng: np.random.Generator) -> list[Edge]:
    # §3.2 WS(K, P): ring lattice, each node joined to its K/2 neighbours on each side, indices clockwise.
    # Then for i = 1..K/2 (outer), for v clockwise (inner): with probability P rewire edge (v, v+i) to a
    # node chosen uniformly among those that are not v and not adjacent to v.
    adj = [set() for _ in range(n)]
    for v in range(n):
        for i in range(1, k // 2 + 1):
            w = (v + i) % n
            adj[v].add(w)
            adj[w].add(v)
    for i in range(1, k // 2 + 1):
        for v in range(n):
            if rng.random() < p:
                _rewire(adj, v, (v + i) % n, rng)
    return [(v, w) for v in range(n) for w in adj[v] if v < w]


def _rewire(adj: list[set[int]], v: int, old: int, rng: np.random.Generator) -> None:
    """Edge (v, old) moved to (v, new), ``new`` uniform among the nodes that are not v and not adjacent to v;
    kept where v is joined to every node (nothing to rewire to)."""
    candidates = [u for u in range(len(adj)) if u != v and u not in adj[v]]
    if not candidates:
        return
    new = candidates[_uniform_index(rng, len(candidates))]
    adj[v].discard(old)
    adj[old].discard(v)
    adj[v].add(new)
    adj[new].add(v)


def ws_flex_edges(n: int, k: float, p: float, rng: np.random.Generator) -> list[Edge]:
    # WS-flex (You, Leskovec, He, Xie 2020, §4): WS with a real average degree K. reading: round(N·K/2) edges
    # are dealt to the nodes in turn (the first ones get one more), node v joins the next count[v] nodes
    # clockwise; then each dealt edge (v, w), v in order, is rewired with probability P to a node chosen
    # uniformly among those not v and not adjacent to v (as WS here). K = 4 deals WS(4, P)'s ring lattice;
    # the rewiring visits the edges node by node (WS: ring distance by ring distance), so P > 0 differs.
    m = int(round(n * k / 2))
    count = [m // n + (1 if v < m % n else 0) for v in range(n)]
    adj: list[set[int]] = [set() for _ in range(n)]
    dealt = [(v, (v + i) % n) for v in range(n) for i in range(1, count[v] + 1)]
    for v, w in dealt:
        adj[v].add(w)
        adj[w].add(v)
    for v, w in dealt:
        if rng.random() < p and w in adj[v]:
            _rewire(adj, v, w, rng)
    return [(v, w) for v in range(n) for w in adj[v] if v < w]
