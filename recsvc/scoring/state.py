"""What a strategy is told: the visitor's state, what the caller wants, and the answer.

- :class:`VisitorState`: the long-term vector (when the model knows the visitor), their
  recent items newest first with the event type, time and touch count of each, their cart
  and their purchases, all as item rows of one model. The service builds it from the
  real-time profile (:func:`state_from_profile`); the evaluation builds it the same way,
  from profiles replayed from the train log.
- :class:`Want`: how many items, which items the request allows (its filters), whether the
  visitor's own items may come back, and how many candidates to return for re-ranking.
- :class:`Ranked`: item rows best first, their scores, and per row the evidence: which
  part of the strategy and which of the visitor's items drove the score, with shares.

The profile documents are plain JSON (:mod:`recsvc.core.profile` writes them): recent
items are ``[item_id, event_type, at, touches]`` newest first (older profiles have no
``touches``: 1), the cart is ``shared["cart"]["items"]`` (item id to line) and purchases
``shared["purchases"]["items"]`` (``[item_id, quantity, price, at]``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

EMPTY_ROWS = np.zeros(0, np.int64)


@dataclass(frozen=True)
class VisitorState:
    """A visitor as one model's item rows (items the model does not know are left out).

    Attributes
    ----------
    vector : ndarray, shape (f,), float32, or None
        The long-term user vector; None for a visitor the model was not fit on.
    recent : ndarray, shape (h,), int64
        Recent items, newest first, each once (at its latest touch).
    recent_kinds : tuple of str, length h
        The event type of each one's latest touch.
    recent_times : ndarray, shape (h,), float64
        Epoch seconds of each one's latest touch.
    recent_touches : ndarray, shape (h,), int32
        Events on each one since it entered the recent items (at least 1).
    cart : ndarray, shape (c,), int64
        Items in the cart.
    purchased : ndarray, shape (p,), int64
        Items bought, oldest first.
    """

    vector: np.ndarray | None = None
    recent: np.ndarray = field(default_factory=lambda: EMPTY_ROWS)
    recent_kinds: tuple[str, ...] = ()
    recent_times: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float64))
    recent_touches: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    cart: np.ndarray = field(default_factory=lambda: EMPTY_ROWS)
    purchased: np.ndarray = field(default_factory=lambda: EMPTY_ROWS)

    @classmethod
    def viewing(cls, row: int, at: float = 0.0) -> VisitorState:
        """An anonymous visitor on one item's page (what similar items answer)."""
        return cls(
            recent=np.array([row], np.int64),
            recent_kinds=("product_view",),
            recent_times=np.array([at]),
            recent_touches=np.ones(1, np.int32),
        )

    @classmethod
    def with_cart(cls, rows: Sequence[int] | np.ndarray) -> VisitorState:
        """A visitor known only by their cart (what cart add-ons answer)."""
        return cls(cart=np.asarray(rows, np.int64))

    def current_session(self, gap_seconds: float) -> np.ndarray:
        """The recent items up to the first gap of more than ``gap_seconds`` between two
        of them, oldest first: the session the visitor is in (or was last in)."""
        times = self.recent_times
        gaps = np.flatnonzero(times[:-1] - times[1:] > gap_seconds)
        end = int(gaps[0]) + 1 if len(gaps) else len(times)
        return self.recent[:end][::-1]

    def own_items(self) -> np.ndarray:
        """Every item of the visitor's: recent, in the cart, bought (sorted, distinct)."""
        return np.unique(np.concatenate([self.recent, self.cart, self.purchased]))


@dataclass(frozen=True)
class Want:
    """What the caller asks of a strategy.

    Attributes
    ----------
    n : int
        Items to return (at most).
    allowed : ndarray, shape (n_items,), bool, or None
        The request's filters (excluded ids, category, stock): only items where it is True
        are returned. None: every item.
    exclude_seen : bool
        Never return the visitor's own items (:meth:`VisitorState.own_items`): discovery.
    width : int
        Candidates to return, best first (``>= n``): a re-ranking caller asks for more.
    categories : ndarray, shape (n_items,), int32, or None
        Category code per item row (-1: unknown), for the popular strategy's favourite
        category.
    explain : bool
        Work out the evidence; an evaluation, which only reads the ranking, turns it off
        (the rows and scores are the same either way).
    """

    n: int = 10
    allowed: np.ndarray | None = None
    exclude_seen: bool = False
    width: int = 0
    categories: np.ndarray | None = None
    explain: bool = True

    @property
    def k(self) -> int:
        """Rows a strategy returns: ``max(n, width)``."""
        return max(self.n, self.width)

    def mask(self, n_items: int, state: VisitorState) -> np.ndarray:
        """The items this request may return for ``state``: a fresh bool array."""
        mask = np.ones(n_items, bool) if self.allowed is None else self.allowed.copy()
        if self.exclude_seen:
            mask[state.own_items()] = False
        return mask


@dataclass(frozen=True, slots=True)
class Evidence:
    """One contribution to a recommended item's score.

    ``part`` names the strategy's part (``long_term``, ``session``, ``recent``, ``cart``,
    ``purchased``, ``history``, ``similar``, ``lists``, ``fold_in``, ``popular``,
    ``trending``); ``row`` the visitor's item behind it (-1: none in particular); ``share``
    its share of the score. A row's shares sum to 1 (some may be negative: an item that
    pulls the score down)."""

    part: str
    row: int
    share: float


@dataclass
class Ranked:
    """A strategy's answer.

    Attributes
    ----------
    strategy : str
        The strategy's name, as the API reports it.
    rows : ndarray, shape (m,), int32
        Item rows, best first, ``m <= Want.k``; never a row the want rules out.
    scores : ndarray, shape (m,), float32, or None
        Their scores; None where the strategy ranks without one (popular).
    evidence : list of list of Evidence
        Per row, every contribution, largest share first (strategies whose evidence costs
        work leave the lists empty when the want does not ask to explain).
    """

    strategy: str
    rows: np.ndarray
    scores: np.ndarray | None
    evidence: list[list[Evidence]]

    def __len__(self) -> int:
        return len(self.rows)


def state_from_profile(
    row_of: Mapping[str, int],
    visitor: Mapping[str, Any] | None,
    shared: Mapping[str, Any] | None,
    vector: np.ndarray | None = None,
) -> VisitorState:
    """A :class:`VisitorState` from the profile's documents (module docstring).

    Parameters
    ----------
    row_of : mapping of str to int
        The model's item rows by id; unknown items are left out.
    visitor : dict or None
        The visitor document (None: no profile).
    shared : dict or None
        The cart-and-purchases document (the customer's for a stitched visitor).
    vector : ndarray or None
        The visitor's long-term vector.
    """
    rows, kinds, times, touches = [], [], [], []
    for entry in (visitor or {}).get("recent_items", ()):
        row = row_of.get(entry[0])
        if row is not None:
            rows.append(row)
            kinds.append(entry[1])
            times.append(entry[2])
            touches.append(entry[3] if len(entry) > 3 else 1)
    cart = (shared or {}).get("cart", {}).get("items", {})
    bought = (shared or {}).get("purchases", {}).get("items", ())
    return VisitorState(
        vector=vector,
        recent=np.array(rows, np.int64),
        recent_kinds=tuple(kinds),
        recent_times=np.array(times, np.float64),
        recent_touches=np.array(touches, np.int32),
        cart=_known(row_of, cart),
        purchased=_known(row_of, (line[0] for line in bought)),
    )


def _known(row_of: Mapping[str, int], item_ids) -> np.ndarray:
    rows = [row_of[item_id] for item_id in item_ids if item_id in row_of]
    return np.array(list(dict.fromkeys(rows)), np.int64)
