from recsvc.core.funnel import FUNNEL_STEPS, funnel_table, new_marks, step_reached


def test_step_reached():
    assert step_reached("page_view", starts_visit=True, is_customer=False) == 0
    assert step_reached("page_view", starts_visit=False, is_customer=False) is None
    assert step_reached("product_view", starts_visit=False, is_customer=False) == 1
    assert step_reached("purchase", starts_visit=True, is_customer=False) == 5
    # A marketing email opened by someone who never bought is no funnel step...
    assert step_reached("email_open", starts_visit=False, is_customer=False) is None
    assert step_reached("email_open", starts_visit=True, is_customer=False) == 0
    # ...the confirmation email after a purchase is.
    assert step_reached("email_open", starts_visit=False, is_customer=True) == 6
    assert step_reached("banner_click", starts_visit=False, is_customer=True) is None


def test_new_marks_counts_each_step_once_per_day_and_type():
    state: dict = {}
    assert new_marks(state, "2026-01-01", "new", 1) == [0, 1]
    assert new_marks(state, "2026-01-01", "new", 1) == []
    assert new_marks(state, "2026-01-01", "new", 3) == [2, 3]  # implied review_view
    assert new_marks(state, "2026-01-01", "new", 2) == []
    assert new_marks(state, "2026-01-02", "new", 1) == [0, 1]  # a new day starts over
    assert new_marks(state, "2026-01-02", "returning", 0) == [0]


def test_funnel_table():
    rows = funnel_table([100, 50, 20, 10, 5, 4, 2, 0])
    assert [r["step"] for r in rows] == list(FUNNEL_STEPS)
    assert rows[0] == {
        "step": "landing",
        "visitors": 100,
        "conversion": 1.0,
        "drop_off": 0.0,
        "dropped": 0,
        "overall": 1.0,
    }
    assert rows[1]["conversion"] == 0.5 and rows[1]["dropped"] == 50
    assert rows[5]["conversion"] == 0.8 and rows[5]["drop_off"] == 0.2
    assert rows[7]["conversion"] == 0.0 and rows[7]["overall"] == 0.0


def test_funnel_table_empty_and_clipped():
    assert all(r["visitors"] == 0 for r in funnel_table([0] * 8))
    # HyperLogLog noise can make a later step read higher: conversion never exceeds 1.
    assert funnel_table([10, 11, 0, 0, 0, 0, 0, 0])[1]["conversion"] == 1.0
