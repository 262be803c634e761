"""The paper's population analyses as commands over run or sweep folders (``damage`` also over
checkpoints). They read what runs wrote (``metrics.json``, ``graphs/stage*.json``, checkpoints); they never
retrain and never re-sample a graph.

    python -m randwire.analysis grid PATH... [--out DIR] [--wandb [PROJECT]]      Fig. 3   (grid.py)
    python -m randwire.analysis damage PATH... [--out DIR] [--split test]           Fig. 5   (damage.py)
    python -m randwire.analysis nodeops PATH... [--out DIR]                         Fig. 6   (nodeops.py)
    python -m randwire.analysis stats PATH... [--out DIR]                           statistics vs accuracy

``grid``: top-1 mean ± std over the instances of every generator setting (``grid.csv``: one row per
setting with failed and never-started jobs; ``grid.png``: one panel per generator, ER over P, BA over M, WS
over P with a line per K) and pycls-style error EDFs (``edf.png``: per generator, the fraction of its
trained instances with test error below x), because the paper's claim is about distributions.

``damage``: every node and every edge of every random stage of trained networks removed in turn, the
damaged network evaluated (``damage.csv``, ``damage.png``: Δ top-1 against the removed node's out-degree
or the edge target's in-degree).

``nodeops``: one accuracy series per node operation over the generator settings (``nodeops.csv``), the
Pearson r of every pair (``nodeops_pearson.csv``; the paper: 0.91-0.98) and ``nodeops.png``.

``stats``: the networkx statistics of each stage graph — average clustering and average shortest path
length of the undirected graph, degree mean/std/max, input and output nodes, DAG depth and width — joined to
each run's accuracy (``runs.csv``, one row per run), their Pearson r with test top-1 (``correlations.csv``)
and one scatter per statistic (``stats.png``).

PATHs: run folders, sweep folders or a parent of several sweeps; the jobs of a sweep that failed, were
killed or never started are counted under their setting. Reading: the shortest-path length of a
disconnected graph (possible for sparse ER) is taken on its largest connected component
(``*_connected`` says whether the whole graph was).
"""
