"""Scoring: every formula the service ranks with, and the model artifact's format.

numpy and scipy only (an import contract in ``pyproject.toml`` keeps it so): the service
scores through it, the offline job (``training``) fits and writes through it, and the
evaluation calls the very strategy objects the service calls.

- :mod:`~recsvc.scoring.strategies`: every served strategy behind one interface, and the
  fallback chains;
- :mod:`~recsvc.scoring.state`: what a strategy is told (visitor state, request) and what
  it answers (ranked rows with evidence);
- :mod:`~recsvc.scoring.model`: one version in memory, and its serving parameters;
- :mod:`~recsvc.scoring.blend`, :mod:`~recsvc.scoring.session_model`,
  :mod:`~recsvc.scoring.foldin`, :mod:`~recsvc.scoring.cart`,
  :mod:`~recsvc.scoring.similar`: the formulas of each strategy;
- :mod:`~recsvc.scoring.index`, :mod:`~recsvc.scoring.topk`, :mod:`~recsvc.scoring.rerank`:
  search, ranking and re-ranking;
- :mod:`~recsvc.scoring.artifact`: a version on disk.
"""
