"""Identity tokens: what verifies and what does not, and that they are JWTs any JWT
library mints and reads (so a backend in any language can make them)."""

import base64
import hashlib
import hmac
import json

import pytest

from recsvc.identity.tokens import (
    MAX_TOKEN_CHARS,
    IdentityClaims,
    InvalidToken,
    check_secrets,
    mint_token,
    verify_token,
)

SECRET = "a-secret-of-at-least-thirty-two-chars"
OTHER = "another-secret-of-thirty-two-chars!!"
NOW = 1_773_144_000.0  # 2026-03-10T12:00:00Z
WEEK = 7 * 86400


def verify(token, secrets=(SECRET,), now=NOW, max_lifetime=WEEK):
    return verify_token(token, secrets, now, max_lifetime)


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def hand_made(header: dict, payload: dict, secret: str = SECRET) -> str:
    """A token made the way the README tells a backend without a JWT library to."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}"
    mac = hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(mac)}"


def test_a_minted_token_proves_its_ids_until_it_expires():
    token = mint_token(SECRET, user_id="u-1", visitor_id="v-1", ttl_seconds=3600, now=NOW)
    assert verify(token) == IdentityClaims("u-1", "v-1", int(NOW) + 3600)
    assert verify(token, now=NOW + 3599).user_id == "u-1"
    with pytest.raises(InvalidToken, match="expired"):
        verify(token, now=NOW + 3600)


@pytest.mark.parametrize(
    ("user_id", "visitor_id"), [("u-1", None), (None, "v-1")], ids=["user-only", "visitor-only"]
)
def test_a_token_may_prove_one_id(user_id, visitor_id):
    token = mint_token(SECRET, user_id=user_id, visitor_id=visitor_id, now=NOW)
    claims = verify(token)
    assert (claims.user_id, claims.visitor_id) == (user_id, visitor_id)


def test_another_secrets_token_proves_nothing():
    token = mint_token(OTHER, user_id="u-1", now=NOW)
    with pytest.raises(InvalidToken, match="signature"):
        verify(token)


def test_every_configured_secret_verifies_rotation():
    old = mint_token(OTHER, user_id="u-1", now=NOW)
    new = mint_token(SECRET, user_id="u-2", now=NOW)
    assert verify(old, secrets=(SECRET, OTHER)).user_id == "u-1"
    assert verify(new, secrets=(SECRET, OTHER)).user_id == "u-2"


def test_changing_the_payload_breaks_the_signature():
    token = mint_token(SECRET, user_id="u-attacker", now=NOW)
    header, _, signature = token.split(".")
    forged = b64(json.dumps({"sub": "u-victim", "exp": int(NOW) + 60}).encode())
    with pytest.raises(InvalidToken, match="signature"):
        verify(f"{header}.{forged}.{signature}")


def test_a_token_valid_too_long_is_refused():
    token = mint_token(SECRET, user_id="u-1", ttl_seconds=WEEK + 1, now=NOW)
    with pytest.raises(InvalidToken, match="ahead"):
        verify(token)


@pytest.mark.parametrize(
    ("header", "payload", "reason"),
    [
        ({"alg": "none"}, {"sub": "u", "exp": int(NOW) + 60}, "HS256"),
        ({"alg": "HS512"}, {"sub": "u", "exp": int(NOW) + 60}, "HS256"),
        ({"alg": "HS256"}, {"sub": "u"}, "exp"),
        ({"alg": "HS256"}, {"sub": "u", "exp": "1999999999"}, "exp"),
        ({"alg": "HS256"}, {"sub": "u", "exp": True}, "exp"),
        ({"alg": "HS256"}, {"exp": int(NOW) + 60}, "no user id"),
        ({"alg": "HS256"}, {"sub": "u{1}", "exp": int(NOW) + 60}, "valid ids"),
        ({"alg": "HS256"}, {"vid": 7, "exp": int(NOW) + 60}, "valid ids"),
    ],
    ids=[
        "alg-none",
        "alg-hs512",
        "no-exp",
        "exp-string",
        "exp-bool",
        "no-ids",
        "bad-sub",
        "vid-int",
    ],
)
def test_signed_tokens_with_bad_claims_are_refused(header, payload, reason):
    with pytest.raises(InvalidToken, match=reason):
        verify(hand_made(header, payload))


@pytest.mark.parametrize(
    "token",
    [
        "",
        "abc",
        "a.b",
        "a.b.c.d",
        "é.é.é",
        "x" * (MAX_TOKEN_CHARS + 1),
        "!!!.???.***",
    ],
)
def test_malformed_tokens_are_refused(token):
    with pytest.raises(InvalidToken):
        verify(token)


def test_a_signed_payload_that_is_not_an_object_is_refused():
    header = b64(b'{"alg":"HS256"}')
    signing_input = f"{header}.{b64(b'[1]')}"
    mac = hmac.new(SECRET.encode(), signing_input.encode(), hashlib.sha256).digest()
    with pytest.raises(InvalidToken, match="Malformed"):
        verify(f"{signing_input}.{b64(mac)}")


def test_without_secrets_nothing_verifies():
    token = mint_token(SECRET, user_id="u-1", now=NOW)
    with pytest.raises(InvalidToken, match="not configured"):
        verify(token, secrets=())


def test_a_hand_made_token_verifies():
    """The README's recipe, followed in plain HMAC code, gives a token recsvc accepts."""
    token = hand_made({"alg": "HS256", "typ": "JWT"}, {"sub": "u-9", "exp": int(NOW) + 60})
    assert verify(token).user_id == "u-9"


def test_tokens_are_jwts_any_library_reads_and_mints():
    jwt = pytest.importorskip("jwt")
    ours = mint_token(SECRET, user_id="u-1", visitor_id="v-1", ttl_seconds=60)
    assert jwt.decode(ours, SECRET, algorithms=["HS256"]) == {
        "sub": "u-1",
        "vid": "v-1",
        "exp": jwt.decode(ours, options={"verify_signature": False})["exp"],
    }
    theirs = jwt.encode({"sub": "u-2", "vid": "v-2", "exp": int(NOW) + 60}, SECRET, "HS256")
    assert verify(theirs) == IdentityClaims("u-2", "v-2", int(NOW) + 60)


@pytest.mark.parametrize(
    "kwargs", [{}, {"user_id": "u{x}"}, {"visitor_id": "v 1"}], ids=["no-ids", "bad-u", "bad-v"]
)
def test_minting_refuses_what_would_not_verify(kwargs):
    with pytest.raises(ValueError):
        mint_token(SECRET, **kwargs)


def test_short_secrets_are_refused_at_start():
    check_secrets((SECRET,))
    with pytest.raises(ValueError, match="32 characters"):
        check_secrets((SECRET, "short"))
