"""Identity tokens: a user id and/or a visitor id, an expiry, signed with HMAC-SHA256.

The scheme of Intercom's identity verification and Algolia's secured API keys: the
store's backend, which knows who is logged in, signs the identity with a secret it shares
with recsvc (``RECSVC_IDENTITY_SECRETS``) and hands the token to the page; the browser
sends it as ``X-Identity-Token``. A browser can copy its own token but cannot make one for
anybody else.

The format is a JSON Web Token (RFC 7519) signed with HS256, so any backend language can
mint one with its JWT library, or in a few lines by hand::

    header  = base64url('{"alg":"HS256","typ":"JWT"}')
    payload = base64url('{"sub":"<user id>","vid":"<visitor id>","exp":<unix seconds>}')
    token   = header + "." + payload + "." + base64url(HMAC-SHA256(secret, header + "." + payload))

base64url without ``=`` padding. ``exp`` (an integer) is required; ``sub`` (the user id)
and ``vid`` (the visitor id) are each optional, one of them is required; other claims are
ignored. Verification accepts only ``HS256``, a signature by one of the configured secrets
(each is tried: rotation), an ``exp`` in the future and at most ``max_lifetime`` seconds
ahead, and ids that are valid ids (``recsvc.core.events.ID_PATTERN``).

This module is plain Python (no Flask): ``mint_token`` is what a Python backend imports.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Sequence
from dataclasses import dataclass

import orjson

from recsvc.core.events import ID_PATTERN

HEADER_NAME = "X-Identity-Token"
# Longer than any token of two 128-character ids: nothing longer is even decoded.
MAX_TOKEN_CHARS = 1024
MIN_SECRET_CHARS = 32
_HEADER = b'{"alg":"HS256","typ":"JWT"}'


class InvalidToken(ValueError):
    """The token proves nothing; the message says why (safe to show the caller)."""


@dataclass(frozen=True)
class IdentityClaims:
    """What a valid token proves: the logged-in user and/or the browser's visitor id."""

    user_id: str | None
    visitor_id: str | None
    expires_at: int  # unix seconds


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
    except ValueError as error:
        raise InvalidToken("Malformed token.") from error


def _signature(secret: str, signing_input: str) -> str:
    mac = hmac.new(secret.encode(), signing_input.encode("ascii"), hashlib.sha256)
    return _b64encode(mac.digest())


def mint_token(
    secret: str,
    *,
    user_id: str | None = None,
    visitor_id: str | None = None,
    ttl_seconds: int = 86400,
    now: float | None = None,
) -> str:
    """A token proving ``user_id`` and/or ``visitor_id`` for ``ttl_seconds`` from ``now``
    (unix seconds, default the current time), signed with ``secret``."""
    if user_id is None and visitor_id is None:
        raise ValueError("a token proves a user id, a visitor id or both")
    for name, value in (("user_id", user_id), ("visitor_id", visitor_id)):
        if value is not None and not ID_PATTERN.fullmatch(value):
            raise ValueError(f"{name} {value!r} is not a valid id")
    claims: dict[str, object] = {}
    if user_id is not None:
        claims["sub"] = user_id
    if visitor_id is not None:
        claims["vid"] = visitor_id
    claims["exp"] = int((time.time() if now is None else now) + ttl_seconds)
    signing_input = f"{_b64encode(_HEADER)}.{_b64encode(orjson.dumps(claims))}"
    return f"{signing_input}.{_signature(secret, signing_input)}"


def verify_token(
    token: str, secrets: Sequence[str], now: float, max_lifetime: int
) -> IdentityClaims:
    """The claims of ``token`` when one of ``secrets`` signed it and it is current.
    Raises ``InvalidToken``."""
    if not secrets:
        raise InvalidToken("Identity tokens are not configured on this service.")
    if len(token) > MAX_TOKEN_CHARS or not token.isascii() or token.count(".") != 2:
        raise InvalidToken("Malformed token.")
    header, payload, signature = token.split(".")
    signing_input = f"{header}.{payload}"
    valid = False
    for secret in secrets:  # every secret, whichever matches: no early exit
        valid |= hmac.compare_digest(_signature(secret, signing_input), signature)
    if not valid:
        raise InvalidToken("Bad signature.")
    return _claims(_json_object(header), _json_object(payload), now, max_lifetime)


def _json_object(part: str) -> dict:
    try:
        value = orjson.loads(_b64decode(part))
    except orjson.JSONDecodeError as error:
        raise InvalidToken("Malformed token.") from error
    if not isinstance(value, dict):
        raise InvalidToken("Malformed token.")
    return value


def _claims(header: dict, payload: dict, now: float, max_lifetime: int) -> IdentityClaims:
    if header.get("alg") != "HS256":
        raise InvalidToken("Only HS256 tokens are accepted.")
    expires = payload.get("exp")
    if isinstance(expires, bool) or not isinstance(expires, int):
        raise InvalidToken("The token needs an integer exp.")
    if expires <= now:
        raise InvalidToken("The token has expired.")
    if expires > now + max_lifetime:
        raise InvalidToken(f"The token expires more than {max_lifetime} s ahead.")
    user_id, visitor_id = payload.get("sub"), payload.get("vid")
    for value in (user_id, visitor_id):
        if value is not None and not (isinstance(value, str) and ID_PATTERN.fullmatch(value)):
            raise InvalidToken("The token's ids are not valid ids.")
    if user_id is None and visitor_id is None:
        raise InvalidToken("The token proves no user id (sub) nor visitor id (vid).")
    return IdentityClaims(user_id, visitor_id, expires)


def check_secrets(secrets: Sequence[str]) -> None:
    """Raise ValueError for a secret too short to sign with (checked at start)."""
    for secret in secrets:
        if len(secret) < MIN_SECRET_CHARS:
            raise ValueError(
                f"RECSVC_IDENTITY_SECRETS: each secret needs at least {MIN_SECRET_CHARS} "
                "characters (32 random bytes, say: python -c 'import secrets; "
                "print(secrets.token_urlsafe(32))')"
            )
