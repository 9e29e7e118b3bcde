"""The auth matrix drill over HTTP: every operation, every kind of key, through gunicorn
(and nginx, where it is installed)."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import pytest

from loadtests.drills import auth_matrix

pytestmark = pytest.mark.slow
HAS_NGINX = bool(shutil.which("nginx")) or Path("/usr/sbin/nginx").exists()


def test_every_operation_answers_every_key_as_its_rule_says():
    verdict = auth_matrix.run(argparse.Namespace(nginx=HAS_NGINX))
    failed = [(what, detail) for what, ok, detail in verdict.checks if not ok]
    assert verdict.checks and not failed, failed


@pytest.mark.parametrize(
    ("path", "caller", "want"),
    [
        ("/healthz", "no key", "open"),
        ("/metrics", "unknown key", "open"),
        ("/v1/events", "no key", "401"),
        ("/v1/events", "unknown key", "401"),
        ("/v1/events", "public", "allowed"),
        ("/v1/admin/banners", "public", "403"),
        ("/v1/admin/banners", "sender", "403"),
        ("/v1/admin/banners", "admin", "allowed"),
        ("/v1/nudges/claim", "public", "403"),
        ("/v1/nudges/claim", "sender", "allowed"),
        ("/v1/analytics/funnel", "public", "403"),
        ("/v1/analytics/funnel", "admin", "allowed"),
        ("/v1/visitors/v1/profile", "public", "401"),
        ("/v1/visitors/v1/profile", "public + own token", "allowed"),
        ("/v1/visitors/v1/profile", "public + other token", "403"),
        ("/v1/visitors/v1/profile", "sender", "allowed"),
        ("/v1/visitors/v1/nudges", "public", "401"),
        ("/v1/visitors/v1/nudges", "public + own token", "allowed"),
        ("/v1/visitors/v1/nudges", "public + other token", "403"),
        ("/v1/visitors/v1/nudges", "admin", "allowed"),
        ("/v1/visitors/v1/recommendations", "public", "allowed"),
        ("/v1/visitors/v1/recommendations", "public + other token", "403"),
        ("/v1/visitors/v1/banners", "public + other token", "allowed"),
        ("/v1/visitors/v1/banners", "no key", "401"),
    ],
)
def test_expected_answers(path, caller, want):
    assert auth_matrix.expected(path, caller) == want


@pytest.mark.parametrize(
    ("body", "caller", "want"),
    [
        (auth_matrix.CART_FOR_VISITOR, "public", "401"),
        (auth_matrix.CART_FOR_VISITOR, "public + own token", "allowed"),
        (auth_matrix.CART_FOR_VISITOR, "public + other token", "403"),
        (auth_matrix.CART_FOR_VISITOR, "sender", "allowed"),
        (b"{}", "public", "allowed"),
    ],
)
def test_cart_add_ons_for_a_visitor_need_its_token(body, caller, want):
    assert auth_matrix.expected("/v1/recommendations/cart", caller, body) == want
