"""Two versions served to the same fresh test visitors: the split, the paired figures."""

from datetime import UTC, datetime

import numpy as np
import pytest

from recsvc.core.events import format_timestamp
from training.compare import (
    FRESH_MARGIN_SECONDS,
    Contender,
    compare_metric,
    compare_served,
    fresh_split,
    paired_bootstrap_interval,
    version_data_end,
    wilcoxon_p,
)
from training.loaders import load_events
from training.pipeline import TrainOptions, train
from training.splits import SECONDS_PER_DAY
from training.weights import load_weights


def trained(interactions, report):
    """A version trained on ``interactions`` as ``recsvc train`` would make it."""
    options = TrainOptions(show_progress=False, compare=())
    artifact = train(interactions, load_weights(), options).artifact
    artifact.manifest["load"] = report.to_dict()
    span = interactions.time_range()
    artifact.manifest["load"]["last_time"] = _iso(span[1])
    return artifact


def _iso(epoch):
    return format_timestamp(datetime.fromtimestamp(epoch, UTC))


@pytest.fixture(scope="module")
def versions(gate_logs):
    """A version trained on the base days, one on the same days with items shuffled."""
    base, report = load_events(gate_logs.base)
    shuffled, shuffled_report = load_events(gate_logs.shuffled)
    shuffled = shuffled.subset(shuffled.time <= base.time_range()[1])
    return trained(base, report), trained(shuffled, shuffled_report)


def test_fresh_split_starts_after_what_the_versions_saw(planted):
    interactions = planted.interactions
    last = interactions.time_range()[1]
    plain = fresh_split(interactions, 7)
    assert plain.cutoff == pytest.approx(last - 7 * SECONDS_PER_DAY)
    seen_until = last - 3 * SECONDS_PER_DAY
    later = fresh_split(interactions, 7, seen_until)
    assert later.cutoff == seen_until + FRESH_MARGIN_SECONDS
    assert later.test.time.min() > seen_until and later.train.time.max() <= seen_until
    assert fresh_split(interactions, 7, last - 30 * SECONDS_PER_DAY).cutoff == plain.cutoff


def test_data_end_is_the_window_then_the_load_then_the_creation():
    created = {"created": "2026-01-03T00:00:00.000Z"}
    load = {**created, "load": {"last_time": "2026-01-02T00:00:00.000Z"}}
    window = {**load, "window": {"last_event": "2026-01-01T00:00:00.000Z"}}
    ends = [version_data_end(m) for m in (window, load, created)]
    assert np.diff(ends).tolist() == [SECONDS_PER_DAY, SECONDS_PER_DAY]
    with pytest.raises(ValueError, match="records no time"):
        version_data_end({"version": "v"})


def test_paired_figures_of_identical_and_shifted_values():
    rng = np.random.default_rng(0)
    a = rng.random(200)
    same = compare_metric("ndcg@10", a, a.copy())
    assert same.difference == 0 and same.difference_interval == (0.0, 0.0)
    assert same.wilcoxon_p == 1.0 and same.a_better == same.b_better == 0
    shifted = compare_metric("ndcg@10", a, a + rng.normal(0.05, 0.02, 200))
    low, high = shifted.difference_interval
    assert 0 < low < shifted.difference < high and shifted.wilcoxon_p < 1e-6
    # Pairing: per-visitor noise far larger than the shift cancels out of the difference.
    assert high - low < (shifted.b_interval[1] - shifted.b_interval[0]) / 3
    assert wilcoxon_p(np.zeros(5)) == 1.0
    assert paired_bootstrap_interval(np.array([])) == (0.0, 0.0)


def test_a_version_against_itself_differs_by_nothing(gate_logs, versions):
    normal, _ = versions
    full, _ = load_events(gate_logs.full)
    split = fresh_split(full, gate_logs.fresh_days, version_data_end(normal.manifest))
    contender = Contender.from_artifact(normal)
    comparison = compare_served(contender, contender, split)
    assert comparison.visitors >= 20 and comparison.targets >= comparison.visitors
    for m in comparison.metrics.values():
        assert m.a == m.b and m.difference == 0 and m.wilcoxon_p == 1.0
    assert comparison.metrics["ndcg@10"].a > 0.1


def test_the_version_trained_on_shuffled_items_is_worse_beyond_the_interval(gate_logs, versions):
    normal, broken = versions
    full, _ = load_events(gate_logs.full)
    seen = max(version_data_end(v.manifest) for v in versions)
    split = fresh_split(full, gate_logs.fresh_days, seen)
    comparison = compare_served(
        Contender.from_artifact(normal), Contender.from_artifact(broken), split
    )
    ndcg = comparison.metrics["ndcg@10"]
    assert ndcg.difference_interval[1] < 0 and ndcg.wilcoxon_p < 0.01
    assert ndcg.a_better > ndcg.b_better
    table = comparison.to_markdown()
    assert f"| ndcg@10 | {ndcg.a:.4f} |" in table and normal.version in table
    assert comparison.strategies["a"]  # which served strategy answered, per version
