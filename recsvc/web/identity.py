"""What the current request proves about its visitor: the ``X-Identity-Token`` header,
verified against ``RECSVC_IDENTITY_SECRETS`` (format in ``recsvc.identity.tokens``).

Views call these where a public key needs proof: ``require_user_ids`` for events that
carry a ``user_id``, ``disclosure_for`` for every read about a visitor (what the answer
may reveal: ``recsvc.serving.disclosure``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from flask import request

from recsvc.identity.tokens import HEADER_NAME, IdentityClaims, InvalidToken, verify_token
from recsvc.serving.disclosure import FULL, UNPROVEN, Disclosure
from recsvc.web.auth import Caller, current_caller
from recsvc.web.errors import ApiError
from recsvc.web.services import services


def proven_identity() -> IdentityClaims:
    """The identity the request's token proves: 401 ``identity_required`` without a
    token, 401 ``invalid_identity_token`` for one that proves nothing (forged, expired,
    malformed, or tokens not configured)."""
    token = request.headers.get(HEADER_NAME)
    if not token:
        raise ApiError(
            401,
            "identity_required",
            f"Send an identity token from the store's backend in {HEADER_NAME}.",
        )
    svc = services()
    try:
        return verify_token(
            token,
            svc.settings.identity_secrets,
            svc.clock.now(),
            svc.settings.identity_token_max_seconds,
        )
    except InvalidToken as error:
        raise ApiError(401, "invalid_identity_token", str(error)) from error


def disclosure_for(visitor_id: str, required: bool) -> Disclosure:
    """What an answer about ``visitor_id`` may reveal to this request. A key that reads
    full profiles (or an open service) sees everything. Otherwise the request proves the
    visitor with a token whose ``vid`` is ``visitor_id``: 401 without a token when
    ``required`` (else nothing of the visitor's is shown), 401 for a token that proves
    nothing, 403 ``identity_mismatch`` for another visitor's. Call it before reading the
    visitor, so an unproven request learns nothing, not even whether the visitor exists."""
    if current_caller().can("read_profiles"):
        return FULL
    if not required and not request.headers.get(HEADER_NAME):
        return UNPROVEN
    identity = proven_identity()
    if identity.visitor_id != visitor_id:
        raise ApiError(
            403,
            "identity_mismatch",
            "The identity token does not prove this visitor id.",
            {"errors": [{"field": "visitor_id", "reason": "Not the token's visitor (vid)."}]},
        )
    return Disclosure(labels=False, proven=True, user_id=identity.user_id)


def require_user_ids(caller: Caller, events: Sequence[dict[str, Any]]) -> None:
    """Events that carry a ``user_id`` stitch a visitor to a customer: on a key that does
    not run on the store's servers, the request's token must prove that user (and, when
    it names a visitor, be that visitor's). 401 without a valid token, 403
    ``identity_mismatch`` naming each event the token does not cover."""
    if caller.can("server"):
        return
    claimed = [(index, event) for index, event in enumerate(events) if event.get("user_id")]
    if not claimed:
        return
    identity = proven_identity()
    wrong = [
        {"index": index, "field": "user_id", "reason": "Not proven by the identity token."}
        for index, event in claimed
        if event["user_id"] != identity.user_id
        or (identity.visitor_id is not None and event["visitor_id"] != identity.visitor_id)
    ]
    if wrong:
        raise ApiError(
            403,
            "identity_mismatch",
            f"The identity token does not prove the user_id of {len(wrong)} events; "
            "nothing was written.",
            {"errors": wrong[:100]},
        )
