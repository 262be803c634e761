"""A generator of your own: any function (n, seed, **params) -> networkx graph on the nodes 0..n-1."""

import networkx as nx


def ring_of_cliques(n, seed, k=4):
    """n/k cliques of k nodes joined in a ring; two random edge swaps per seed make each seed its own instance."""
    graph = nx.ring_of_cliques(n // k, k)  # n must be a multiple of k: randwire checks the node count
    return nx.double_edge_swap(graph, nswap=2, seed=seed)
