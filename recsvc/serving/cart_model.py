"""What cart add-ons work out once per model, so a cart costs a few small products.

- ``fold_in``: the cart's ALS user vector, as ``recsvc.core.foldin.fold_in`` solves it, but
  from ``(YᵀY + λI)⁻¹`` computed once: with ``B = YᵀY + λI`` and the cart's ``h`` items
  ``U`` at confidences ``c`` (``D = diag(c − 1)``), ``x = (B + UᵀDU)⁻¹ Uᵀc`` is
  ``P (I + D U P)⁻¹ c`` with ``P = B⁻¹Uᵀ`` (the push-through identity): an ``h × h``
  solve instead of an ``f × f`` one per request. The two agree to float64 rounding; cast
  to float32 the vectors come out the same (tests/serving/test_cart_model.py).
- ``scoring_at_least``: the items whose score with a vector reaches a bound. By
  Cauchy-Schwarz an item scores at most the product of the norms, so only items of norm
  at least ``bound / ‖x‖`` can: a prefix of the items by decreasing norm. ALS norms are
  heavy-tailed (popular items have long vectors), so for a high bound that is a handful
  of items, scored here from a contiguous copy of the longest vectors.

Built on first use in each worker as the ``LoadedModel``'s ``cart`` (an inverse and a
sort: milliseconds), so it goes with the model it was built for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from recsvc.core.foldin import fold_in

if TYPE_CHECKING:  # holder builds a CartModel per model
    from recsvc.serving.holder import LoadedModel

# float32 dot products may exceed the float32 product of norms by rounding: the bound is
# widened by this relative margin so that no item that could reach it is left out.
BOUND_SLACK = 1e-4
# The longest vectors kept in order: a bound that more items than this could reach is
# left to the search (checking them would cost about as much).
HEAD = 256


class CartModel:
    """Derived arrays only (about 12 bytes an item, and the ``HEAD`` longest vectors); the
    model itself is passed in to each call."""

    def __init__(self, model: LoadedModel) -> None:
        norms = np.linalg.norm(model.item_factors, axis=1).astype(np.float64)
        self.order = np.argsort(-norms, kind="stable").astype(np.int32)
        # Negated, so ascending for searchsorted; float64, so a bound needs no cast of it.
        self.descending = -norms[self.order]
        # The longest vectors, in that order and contiguous: the few rows a bound leaves
        # are read in one sweep rather than gathered from all over the factors.
        self.head = np.ascontiguousarray(model.item_factors[self.order[:HEAD]])
        base = model.gram + model.regularization * np.eye(model.factors)
        self.inverse = np.linalg.inv(base)

    def fold_in(self, model: LoadedModel, rows: np.ndarray, weight: float) -> np.ndarray:
        """``fold_in(Y, YᵀY, rows, [weight] * h, λ, α)`` of ``model`` (the one this was
        built for), for distinct ``rows``."""
        # As fold_in takes it: a float32 weight, times alpha in float64.
        confidence = np.full(len(rows), model.alpha * float(np.float32(weight)))
        y = model.item_factors[rows].astype(np.float64)
        p = self.inverse @ y.T
        system = np.eye(len(rows)) + (confidence - 1.0)[:, None] * (y @ p)
        try:
            return (p @ np.linalg.solve(system, confidence)).astype(np.float32)
        except np.linalg.LinAlgError:  # singular: leave it to the full solve
            weights = np.full(len(rows), weight, np.float32)
            return fold_in(
                model.item_factors, model.gram, rows, weights, model.regularization, model.alpha
            )

    def scoring_at_least(self, vector: np.ndarray, bound: float) -> np.ndarray | None:
        """Rows whose score with ``vector`` is ``bound`` (> 0) or more; None when more items
        than the ``HEAD`` longest are long enough to (the caller must search instead)."""
        length = float(np.linalg.norm(vector)) * (1.0 + BOUND_SLACK)
        if length == 0.0:
            return self.order[:0]
        count = int(np.searchsorted(self.descending, -bound / length, side="right"))
        if count > len(self.head):
            return None
        return self.order[:count][self.head[:count] @ vector >= bound]
