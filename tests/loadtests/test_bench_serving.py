"""The serving benchmark's phases send what the chosen caller would (``--auth``)."""

import time
from urllib.parse import urlparse

from loadtests.bench_serving import Auth, read_phases
from loadtests.server import ADMIN_HEADERS, KEYS
from recsvc.identity.tokens import verify_token


def phases_for(auth: Auth, make_artifact):
    artifact = make_artifact(users=50, items=30)
    return read_phases(artifact, ["anon-1", "anon-2"], 50, ["u3", "u4"], auth)


def visitor_of(path: str) -> str:
    return urlparse(path).path.split("/")[3]


def test_public_reads_carry_the_public_key_and_each_visitors_own_token(make_artifact):
    auth = Auth("public")
    measured = phases_for(auth, make_artifact)
    assert {p.name for p in measured} == {
        "known",
        "known_active",
        "session",
        "popular",
        "similar",
        "cart",
    }
    for phase in measured:
        assert phase.headers == {"X-API-Key": KEYS["public"]}
        for request in phase.requests[:50]:
            if "/recommendations" not in request.path or request.method != "GET":
                assert request.headers == ()
                continue
            ((name, token),) = request.headers
            claims = verify_token(token, [auth.secret], time.time(), 7 * 86400)
            assert name == "X-Identity-Token"
            assert claims.visitor_id == visitor_of(request.path)
    assert auth.settings["RECSVC_IDENTITY_SECRETS"] == auth.secret
    for scope in ("READ_ADDRESS", "READ_VISITOR"):  # the limits reads are charged to
        assert int(auth.settings[f"RECSVC_RATE_LIMIT_{scope}_PER_SECOND"]) >= 10**6


def test_admin_reads_carry_the_admin_key_and_no_token(make_artifact):
    """The default, as profile_endpoints asks for the phases."""
    artifact = make_artifact(users=50, items=30)
    measured = read_phases(artifact, ["anon-1"], 50, ["u3"])
    assert all(p.headers == ADMIN_HEADERS for p in measured)
    assert all(r.headers == () for p in measured for r in p.requests)
    assert Auth("admin").settings == {}
