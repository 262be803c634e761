"""A short re-implementation of graph2nn's WS-flex with its connectivity retry, the reference that
tests/test_graphs.py compares randwire's WS-flex (``graph.connected=true``) with.

Source: You, Leskovec, He, Xie, "Graph Structure of Neural Networks" (ICML 2020), code
github.com/facebookresearch/graph2nn, ``ws_graph`` and ``connected_ws_graph`` (tries=100): round(K·N/2) edges
dealt around the ring (the first nodes one more), each dealt edge (u, v) rewired with probability P to a
node w drawn uniformly until it is not u and not adjacent to u (skipped where u is joined to every node),
the whole graph redrawn from the same random stream until it is connected. Written from that description;
Python's ``random.Random`` as graph2nn's ``py_random_state``.

``python tests/graph2nn_reference.py`` rewrites the committed sample tests/data/graph2nn_ws_flex_stats.json.
"""

import json
import random
from pathlib import Path

import networkx as nx

SETTINGS = [(2.0, 0.5), (2.0, 1.0), (2.5, 0.5), (4.0, 0.2)]  # (K, P), the acceptance settings
N, SAMPLES, SEED = 32, 200, 20200713
FIXTURE = Path(__file__).parent / "data" / "graph2nn_ws_flex_stats.json"


def ws_flex(n: int, k: float, p: float, rng: random.Random) -> nx.Graph:
    edges = int(round(k * n / 2))
    count = [edges // n + (1 if i < edges % n else 0) for i in range(n)]
    graph = nx.Graph()
    graph.add_nodes_from(range(n))
    for u in range(n):
        graph.add_edges_from((u, (u + j) % n) for j in range(1, count[u] + 1))
    for u in range(n):
        for v in [(u + j) % n for j in range(1, count[u] + 1)]:
            if rng.random() < p:
                w = rng.choice(range(n))
                while w == u or graph.has_edge(u, w):
                    if graph.degree(u) >= n - 1:
                        break
                    w = rng.choice(range(n))
                else:
                    if graph.has_edge(u, v):
                        graph.remove_edge(u, v)
                        graph.add_edge(u, w)
    return graph


def connected_ws_flex(n: int, k: float, p: float, rng: random.Random, tries: int = 100) -> nx.Graph:
    for _ in range(tries):
        graph = ws_flex(n, k, p, rng)
        if nx.is_connected(graph):
            return graph
    raise nx.NetworkXError("Maximum number of tries exceeded")


def stats(graph: nx.Graph) -> tuple[float, float]:
    """graph2nn's compute_stats: average clustering, average shortest path length."""
    return nx.average_clustering(graph), nx.average_shortest_path_length(graph)


def reference_sample(k: float, p: float, samples: int = SAMPLES) -> list[tuple[float, float]]:
    rng = random.Random(f"{SEED}-{k}-{p}")
    return [stats(connected_ws_flex(N, k, p, rng)) for _ in range(samples)]


if __name__ == "__main__":
    data = {
        f"{k:g},{p:g}": [[round(c, 12), round(path, 12)] for c, path in reference_sample(k, p)] for k, p in SETTINGS
    }
    FIXTURE.write_text(json.dumps({"n": N, "samples": SAMPLES, "seed": SEED, "stats": data}) + "\n")
    print(f"wrote {FIXTURE}")
