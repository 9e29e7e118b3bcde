"""Event weights, time decay and their TOML config."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from training.weights import DEFAULT_WEIGHTS_PATH, event_weights, load_weights

DAY = 86_400.0


def test_defaults_rank_view_below_cart_below_purchase() -> None:
    config = load_weights()
    assert DEFAULT_WEIGHTS_PATH.exists()
    w = config.events
    assert 0 < w["product_view"] < w["add_to_cart"] < w["purchase"]
    assert config.half_life_days == 0 and config.transform == "none"


def test_overrides_merge_event_weights(tmp_path: Path) -> None:
    config = load_weights(events={"purchase": 20.0}, half_life_days=7)
    assert config.events["purchase"] == 20.0
    assert config.events["add_to_cart"] == load_weights().events["add_to_cart"]
    assert config.half_life_days == 7
    custom = tmp_path / "w.toml"
    custom.write_text("[events]\nproduct_view = 2\n[matrix]\nmin_user_interactions = 3\n")
    config = load_weights(custom)
    assert config.events == {"product_view": 2.0} and config.min_user_interactions == 3


def test_bad_configs_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown event"):
        load_weights(events={"like": 1.0})
    with pytest.raises(ValueError, match=">= 0"):
        load_weights(events={"purchase": -1.0})


def test_weights_by_type_and_half_life_decay(make_log) -> None:
    now = 100 * DAY
    log = make_log(
        [
            ("u", "a", now, "product_view"),
            ("u", "b", now, "add_to_cart"),
            ("u", "c", now, "purchase"),
            ("u", "d", now - 7 * DAY, "purchase"),
            ("u", "e", now - 14 * DAY, "purchase"),
            ("u", "f", now, "page_view"),
        ]
    )
    config = load_weights(events={"product_view": 1, "add_to_cart": 4, "purchase": 8})
    plain = event_weights(log, config, now)
    by_item = dict(zip(log.items[log.item], plain.tolist(), strict=True))
    assert by_item == {"a": 1, "b": 4, "c": 8, "d": 8, "e": 8, "f": 0}
    decayed = event_weights(log, config.replace(half_life_days=7), now)
    by_item = dict(zip(log.items[log.item], decayed.tolist(), strict=True))
    assert (
        by_item["c"] == 8 and by_item["d"] == pytest.approx(4) and by_item["e"] == pytest.approx(2)
    )
    assert decayed.dtype == np.float32
