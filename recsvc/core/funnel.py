"""The web funnel: which step an event reaches, and the drop-off table.

Steps, in order: landing → product_view → review_view → add_to_cart → checkout_start →
purchase → email_open (the confirmation email) → survey_response.

Counting rule: a visitor *reaches* step k on day d when, on that day (UTC), they do step
k's event or the event of any later step; so each day's counts never grow down the funnel
and the conversion between neighbouring steps is at most 1. Landing is the first event of
a visit (of any type). ``email_open`` and ``survey_response`` count only for a visitor who
has bought (the confirmation email and the post-purchase survey); marketing email opens by
visitors who never bought are touchpoints, not funnel steps.
"""

from __future__ import annotations

from typing import Any

FUNNEL_STEPS: tuple[str, ...] = (
    "landing",
    "product_view",
    "review_view",
    "add_to_cart",
    "checkout_start",
    "purchase",
    "email_open",
    "survey_response",
)

_STEP_INDEX = {name: index for index, name in enumerate(FUNNEL_STEPS)}
_POST_PURCHASE = {"email_open", "survey_response"}
VISITOR_TYPES: tuple[str, ...] = ("new", "returning")
UNKNOWN_SOURCE = "unknown"


def step_reached(event_type: str, starts_visit: bool, is_customer: bool) -> int | None:
    """Index of the furthest funnel step this event reaches, or None for no step."""
    step = _STEP_INDEX.get(event_type)
    if step is not None and event_type in _POST_PURCHASE and not is_customer:
        step = None
    if starts_visit:
        return max(step or 0, 0)
    return step


def new_marks(state: dict[str, Any], day: str, visitor_type: str, step: int) -> list[int]:
    """Steps to count for this visitor on ``day`` given what was already counted.

    ``state`` is the visitor's funnel progress ``{"day", "visitor_type", "step"}``; it is
    updated in place, so each (day, visitor type, step) is counted once per visitor.
    """
    if state.get("day") == day and state.get("visitor_type") == visitor_type:
        first = state["step"] + 1
    else:
        first = 0
        state.update(day=day, visitor_type=visitor_type, step=-1)
    if step < first:
        return []
    state["step"] = step
    return list(range(first, step + 1))


def funnel_table(visitors: list[int]) -> list[dict[str, Any]]:
    """Rows of the funnel for per-step unique visitor counts (in ``FUNNEL_STEPS`` order).

    ``conversion`` is visitors at this step over visitors at the previous step (1.0 for
    landing, 0.0 when the previous step is empty), ``drop_off`` is ``1 - conversion``,
    ``dropped`` the visitors lost since the previous step, ``overall`` visitors over
    landing visitors.
    """
    rows = []
    for index, (step, count) in enumerate(zip(FUNNEL_STEPS, visitors, strict=True)):
        previous = visitors[index - 1] if index else count
        conversion = min(count / previous, 1.0) if previous else (1.0 if index == 0 else 0.0)
        rows.append(
            {
                "step": step,
                "visitors": count,
                "conversion": round(conversion, 4),
                "drop_off": round(1.0 - conversion, 4),
                "dropped": max(previous - count, 0),
                "overall": round(count / visitors[0], 4) if visitors[0] else 0.0,
            }
        )
    return rows
