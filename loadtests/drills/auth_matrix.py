"""Drill: every operation of the API document against every kind of key, over HTTP.

    python -m loadtests.drills.auth_matrix [--no-nginx]

Starts its own Redis and the service on it with a key of each role (``KEYS``), and nginx in
front (``loadtests/drills/nginx.conf``; ``--no-nginx``: the service only). For each door,
each operation of the service's own ``/openapi.json`` (path parameters filled in, an empty
JSON object as the body) is sent with no key, an unknown key and each role's key.

Verdict: operations endpoints (``recsvc.web.auth.OPEN_PREFIXES``) answer without a key;
every other one answers 401 without a key or with an unknown one, 403 to a role its rule
(``recsvc.web.auth.RESTRICTED``) leaves out, and neither to the roles it lets in; nothing
answers a 5xx. The in-process matrix (tests/web/test_auth.py) holds the rules; this one
holds the deployment: gunicorn and nginx pass the key header through and answer as the app.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import uuid
from collections import Counter

from loadtests.drills import support
from loadtests.server import KEYS, running_service
from recsvc.web.auth import CAPABILITIES, OPEN_PREFIXES, RESTRICTED

CALLERS = {"no key": None, "unknown key": "not-a-key", **KEYS}


def expected(path: str, caller: str) -> str:
    """``open``, ``401``, ``403`` or ``allowed`` (anything but 401 and 403): the rules of
    ``recsvc.web.auth`` (a route prefix needs a capability of the caller's role), and a
    profile read with a key that may not read any profile needs the visitor's identity
    token, which the drill never sends."""
    if path.startswith(OPEN_PREFIXES):
        return "open"
    if caller in ("no key", "unknown key"):
        return "401"
    capabilities = CAPABILITIES[caller]
    for prefix, capability, _needed in RESTRICTED:
        if path.startswith(prefix):
            return "allowed" if capability in capabilities else "403"
    if path.endswith("/profile") and "read_profiles" not in capabilities:
        return "401"
    return "allowed"


def operations(port: int) -> list[tuple[str, str]]:
    """(method, path) of every operation in the service's API document, with path
    parameters filled in."""
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
                found.append((method.upper(), path))
    return [*found, ("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/metrics")]


def call(port: int, method: str, path: str, key: str | None) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    headers = {"Content-Type": "application/json"}
    if key is not None:
        headers["X-API-Key"] = key
    body = b"{}" if method in ("POST", "PUT", "PATCH") else None
    connection.request(method, path, body=body, headers=headers)
    status = connection.getresponse().status
    connection.close()
    return status


def judge_door(verdict: support.Verdict, door: str, port: int) -> None:
    mismatches, statuses = [], Counter()
    ops = operations(port)
    for method, path in ops:
        for caller, key in CALLERS.items():
            status = call(port, method, path, key)
            statuses[status] += 1
            want = expected(path, caller)
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
    with (
        support.time_limit(180, "auth_matrix"),
        support.own_redis() as redis_server,
        running_service(redis_server.url, namespace=namespace, workers=1) as svc,
    ):
        doors = {"gunicorn": svc.port}
        with contextlib.ExitStack() as stack:
            if args.nginx:
                doors["nginx"] = stack.enter_context(support.nginx_in_front(svc.port))
            for door, port in doors.items():
                judge_door(verdict, door, port)
    return verdict


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-nginx", dest="nginx", action="store_false")
    raise SystemExit(run(parser.parse_args()).report())


if __name__ == "__main__":
    main()
