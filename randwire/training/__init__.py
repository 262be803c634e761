"""The training framework: a composed Hydra config → checked components → a Lightning fit → a run folder.

schema, plan (the one validation pass), config → data → module (the LightningModule) and callbacks (the
framework's guarantees) → checkpoints (reading, resume checks) → run (train) / evaluate → distributed,
resources, launcher (DDP, CPU shares, Slurm) → loggers, provenance, records (what a run folder holds).
Builds on :mod:`randwire.models`; knows nothing of :mod:`randwire.analysis`.
"""
