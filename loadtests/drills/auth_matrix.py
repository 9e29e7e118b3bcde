"""Drill: every operation of the API document against every kind of key, over HTTP.

    python -m loadtests.drills.auth_matrix [--no-nginx]

Starts its own Redis and the service on it with a key of each role (``KEYS``) and an
identity secret, and nginx in front (``loadtests/drills/nginx.conf``; ``--no-nginx``: the
service only). For each door, each operation of the service's own ``/openapi.json`` (path
parameters filled in, an empty JSON object as the body), and cart add-ons for a visitor,
is sent with no key, an unknown key, each role's key, and the public key with an identity
token of the path's visitor and with one of another visitor.

Verdict: operations endpoints (``recsvc.web.auth.OPEN_PREFIXES``) answer without a key;
every other one answers 401 without a key or with an unknown one, 403 to a role its rule
(``recsvc.web.auth.RESTRICTED``) leaves out, and neither to the roles it lets in. Reads
about a visitor (``VISITOR_READS``) with a key that may not read full profiles follow
``recsvc.serving.disclosure``: the profile, nudges and cart add-ons for a visitor are a
401 without the visitor's token, recommendations are served without one, and a token of
another visitor is a 403 on all three and on recommendations. Nothing answers a 5xx. The
in-process tests (tests/web/test_auth.py, tests/serving/test_disclosure.py) hold the rules;
this one holds the deployment: gunicorn and nginx pass the key and token headers through
and answer as the app.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import secrets
import uuid
from collections import Counter
from dataclasses import dataclass

from loadtests.drills import support
from loadtests.server import KEYS, running_service
from recsvc.identity.tokens import mint_token
from recsvc.web.auth import CAPABILITIES, OPEN_PREFIXES, RESTRICTED

# The path's visitor (its parameter filled in as the drill does) and another one.
VISITOR, OTHER_VISITOR = "drill-visitor_id", "drill-someone-else"
CART_FOR_VISITOR = json.dumps({"items": ["drill-item"], "visitor_id": VISITOR}).encode()


@dataclass(frozen=True)
class Caller:
    """A role's key (None: no key; ``"unknown"``: a key nobody configured) and, for the
    public key, whose identity token it sends: ``"own"`` (the path's visitor's),
    ``"other"`` (another visitor's) or None."""

    role: str | None
    token: str | None = None


CALLERS = {
    "no key": Caller(None),
    "unknown key": Caller("unknown"),
    **{role: Caller(role) for role in KEYS},
    "public + own token": Caller("public", "own"),
    "public + other token": Caller("public", "other"),
}

# Reads about a visitor by what a key that may not read full profiles needs
# (recsvc.serving.disclosure): "proof", the visitor's token (401 without, 403 for another
# visitor's); "offered", none, but a token sent must be the visitor's (403 otherwise).
# Banners read no token; cart add-ons without a visitor_id read nobody.
VISITOR_READS = {"/profile": "proof", "/nudges": "proof", "/recommendations": "offered"}


def visitor_rule(path: str, body: bytes | None) -> str | None:
    if path == "/v1/recommendations/cart":
        return "proof" if body == CART_FOR_VISITOR else None
    if not path.startswith("/v1/visitors/"):
        return None
    return next((rule for end, rule in VISITOR_READS.items() if path.endswith(end)), None)


def expected(path: str, caller: str, body: bytes | None = None) -> str:
    """``open``, ``401``, ``403`` or ``allowed`` (anything but 401 and 403): the rules of
    ``recsvc.web.auth`` (a route prefix needs a capability of the caller's role), then,
    for a key that may not read full profiles, the proof a read about a visitor needs
    (``VISITOR_READS``)."""
    if path.startswith(OPEN_PREFIXES):
        return "open"
    who = CALLERS[caller]
    if who.role in (None, "unknown"):
        return "401"
    capabilities = CAPABILITIES[who.role]
    for prefix, capability, _needed in RESTRICTED:
        if path.startswith(prefix):
            return "allowed" if capability in capabilities else "403"
    rule = visitor_rule(path, body)
    if rule is None or "read_profiles" in capabilities:
        return "allowed"
    if who.token == "other":
        return "403"
    if who.token is None and rule == "proof":
        return "401"
    return "allowed"


def operations(port: int) -> list[tuple[str, str, bytes | None]]:
    """(method, path, body) of every operation in the service's API document, with path
    parameters filled in and an empty JSON object as the body, and cart add-ons for the
    path's visitor."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request("GET", "/openapi.json")
    document = json.loads(connection.getresponse().read())
    found = []
    for template, item in document["paths"].items():
        path = template
        for name in [p.split("}")[0] for p in template.split("{")[1:]]:
            path = path.replace("{" + name + "}", f"drill-{name}")
        for method in item:
            if method in ("get", "post", "put", "delete", "patch"):
                body = b"{}" if method in ("post", "put", "patch") else None
                found.append((method.upper(), path, body))
    extra = [("POST", "/v1/recommendations/cart", CART_FOR_VISITOR)]
    return [*found, *extra, *[("GET", p, None) for p in ("/healthz", "/readyz", "/metrics")]]


def headers_of(caller: Caller, secret: str) -> dict[str, str]:
    headers = {"Content-Type": "application/json"}
    if caller.role is not None:
        headers["X-API-Key"] = KEYS.get(caller.role, "not-a-key")
    if caller.token is not None:
        visitor = VISITOR if caller.token == "own" else OTHER_VISITOR
        headers["X-Identity-Token"] = mint_token(secret, visitor_id=visitor)
    return headers


def call(port: int, method: str, path: str, body: bytes | None, headers: dict[str, str]) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request(method, path, body=body, headers=headers)
    status = connection.getresponse().status
    connection.close()
    return status


def judge_door(verdict: support.Verdict, door: str, port: int, secret: str) -> None:
    mismatches, statuses = [], Counter()
    ops = operations(port)
    for method, path, body in ops:
        for caller, who in CALLERS.items():
            status = call(port, method, path, body, headers_of(who, secret))
            statuses[status] += 1
            want = expected(path, caller, body)
            ok = status < 500 and (
                (want == "401" and status == 401)
                or (want == "403" and status == 403)
                or (want in ("open", "allowed") and status not in (401, 403))
            )
            if not ok:
                mismatches.append(f"{method} {path} with {caller}: {status}, wanted {want}")
    verdict.check(
        f"{door}: every operation answers each key as its rule says, no 5xx",
        not mismatches,
        f"{len(ops)} operations x {len(CALLERS)} callers"
        + (f"; {len(mismatches)} wrong, e.g. {mismatches[:3]}" if mismatches else ""),
    )
    verdict.figures[f"{door} statuses"] = dict(sorted(statuses.items()))


def run(args: argparse.Namespace) -> support.Verdict:
    verdict = support.Verdict("auth_matrix")
    namespace = f"drill{uuid.uuid4().hex[:6]}"
    secret = secrets.token_urlsafe(32)
    with (
        support.time_limit(180, "auth_matrix"),
        support.own_redis() as redis_server,
        running_service(
            redis_server.url,
            namespace=namespace,
            workers=1,
            settings={"RECSVC_IDENTITY_SECRETS": secret},
        ) as svc,
    ):
        doors = {"gunicorn": svc.port}
        with contextlib.ExitStack() as stack:
            if args.nginx:
                doors["nginx"] = stack.enter_context(support.nginx_in_front(svc.port))
            for door, port in doors.items():
                judge_door(verdict, door, port, secret)
    return verdict


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-nginx", dest="nginx", action="store_false")
    raise SystemExit(run(parser.parse_args()).report())


if __name__ == "__main__":
    main()
