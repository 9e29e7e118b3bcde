"""Hand-made event logs and banners for the backtest tests.

A module of its own (not conftest) so that tests import it by a name no other test folder
uses."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

from recsvc.core.events import format_timestamp
from recsvc.schemas.banners import BannerSchema

# A Tuesday, noon UTC: the same moment as the app's manual clock in tests/conftest.py.
T0 = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
MINUTE = 60.0
HOUR = 3600.0
DAY = 86400.0


class Log:
    """Events in the order they are added, with ids that sort in that order."""

    def __init__(self, start: datetime = T0) -> None:
        self.start = start
        self.records: list[dict[str, Any]] = []
        self._ids = itertools.count()

    def add(self, kind: str, visitor: str = "v1", at: float = 0.0, **fields: Any) -> dict:
        """An event ``at`` seconds after the start."""
        moment = self.start + timedelta(seconds=at)
        record = {
            "id": f"e{next(self._ids):06d}",
            "type": kind,
            "visitor_id": visitor,
            "timestamp": format_timestamp(moment),
            **fields,
        }
        self.records.append(record)
        return record

    def page(self, visitor: str = "v1", at: float = 0.0, page: str = "home", **fields: Any):
        return self.add("page_view", visitor, at, properties={"page": page}, **fields)

    def cart(self, visitor: str = "v1", at: float = 0.0, item: str = "i1", **fields: Any):
        return self.add("add_to_cart", visitor, at, item_id=item, quantity=1, price=20.0, **fields)

    def buy(self, visitor: str = "v1", at: float = 0.0, item: str = "i1", **fields: Any):
        return self.add("purchase", visitor, at, item_id=item, quantity=1, price=20.0, **fields)


def banner(banner_id: str, placement: str = "home", **fields: Any) -> dict[str, Any]:
    """A banner as the API stores it (validated, defaults filled in)."""
    body = {"id": banner_id, "placement": placement, "content": {"title": banner_id}, **fields}
    return BannerSchema().load(body)
