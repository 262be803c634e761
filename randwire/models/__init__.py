"""The model library: RandWire networks from stored random graphs (paper §3), usable from any training loop.

graphs (ER/BA/WS, stored form, hashes) → architecture (regimes, node ops, stage layout; no torch) →
complexity (analytic params/FLOPs) → network (torch modules built from stored graphs) → execution (the
fast plan) and lesions (graph damage, Fig. 5). Imports neither Lightning nor Hydra nor W&B
(``tests/test_layers.py`` fails if it does); :mod:`randwire.training` builds on it.
"""
