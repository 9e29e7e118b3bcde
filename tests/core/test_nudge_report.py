"""Nudge analytics maths against numbers worked out by hand."""

import pytest

from recsvc.core.nudge_report import channel_row, nudge_report

EMAIL = {
    "eligible": 1000,
    "held_out": 100,
    "claimed": 900,
    "sent": 800,
    "clicked": 120,
    "recovered": 80,
    "recovered_value": 4000.0,
    "holdout_recovered": 5,
    "holdout_recovered_value": 250.0,
}


def test_rates_incrementality_and_lift():
    row = channel_row("email", EMAIL)
    # 80 / 800 = 0.1; 5 / 100 = 0.05; 80 - 800 × 0.05 = 40; 0.1 / 0.05 - 1 = 1.0
    assert row == {
        "channel": "email",
        **EMAIL,
        "recovery_rate": 0.1,
        "holdout_recovery_rate": 0.05,
        "incremental_recoveries": 40.0,
        "lift": 1.0,
    }


def test_undefined_ratios_are_null_not_zero():
    row = channel_row("push", {"sent": 10, "recovered": 3})
    assert row["recovery_rate"] == 0.3
    assert row["held_out"] == 0 and row["holdout_recovery_rate"] is None
    assert row["incremental_recoveries"] is None and row["lift"] is None
    # Held-out carts that never came back: a rate of 0, and no lift to divide by it.
    row = channel_row("push", {"sent": 10, "recovered": 3, "held_out": 4})
    assert row["holdout_recovery_rate"] == 0.0
    assert row["incremental_recoveries"] == 3.0 and row["lift"] is None
    empty = channel_row("sms", {})
    assert empty["sent"] == 0 and empty["recovery_rate"] is None and empty["lift"] is None


def test_a_nudge_doing_worse_than_nothing_has_negative_lift():
    row = channel_row(
        "onsite", {"sent": 50, "recovered": 2, "held_out": 10, "holdout_recovered": 1}
    )
    # 2/50 = 0.04 against 1/10 = 0.1: 2 - 50 × 0.1 = -3 incremental; 0.04 / 0.1 - 1 = -0.6
    assert row["incremental_recoveries"] == -3.0
    assert row["lift"] == pytest.approx(-0.6)


def test_totals_sum_the_counters_then_compute_the_rates():
    onsite = {"sent": 200, "recovered": 30, "held_out": 20, "holdout_recovered": 2}
    report = nudge_report({"email": EMAIL, "onsite": onsite}, ["onsite", "email", "sms"])
    assert [row["channel"] for row in report["channels"]] == ["onsite", "email", "sms"]
    totals = report["totals"]
    assert totals["channel"] == "all"
    assert (totals["sent"], totals["recovered"]) == (1000, 110)
    assert (totals["held_out"], totals["holdout_recovered"]) == (120, 7)
    # 110 / 1000 = 0.11; 7 / 120 = 0.058333…; 110 - 1000 × 7/120 = 51.67; 0.11 / (7/120) - 1
    assert totals["recovery_rate"] == 0.11
    assert totals["holdout_recovery_rate"] == 0.058333
    assert totals["incremental_recoveries"] == 51.67
    assert totals["lift"] == pytest.approx(0.885714, abs=1e-6)
    assert totals["recovered_value"] == 4000.0


def test_money_is_rounded_to_cents():
    row = channel_row("email", {"recovered_value": 0.1 + 0.2, "holdout_recovered_value": 1 / 3})
    assert row["recovered_value"] == 0.3 and row["holdout_recovered_value"] == 0.33
