"""The ingestion benchmark's token phase: its batches and the ratio it prints."""

import json
import time

from loadtests import bench_ingest
from recsvc.identity.tokens import verify_token

SECRET = "bench-identity-secret-of-32-chars!!"


def test_user_batches_carry_the_token_of_their_own_visitor_and_user():
    requests = bench_ingest.user_batch_requests(5, 5000, SECRET)
    assert len(requests) == bench_ingest.BODIES
    for request in requests[:50]:
        events = json.loads(request.body)["events"]
        assert len(events) == 5 and len({(e["visitor_id"], e["user_id"]) for e in events}) == 1
        [(name, token)] = request.headers
        claims = verify_token(token, (SECRET,), time.time(), 7 * 86400)
        assert name == "X-Identity-Token"
        assert (claims.visitor_id, claims.user_id) == (
            events[0]["visitor_id"],
            events[0]["user_id"],
        )


def test_the_admin_phase_sends_the_same_batches_without_tokens():
    with_tokens = bench_ingest.user_batch_requests(5, 5000, SECRET)
    without = bench_ingest.user_batch_requests(5, 5000, None)
    assert [r.body for r in without] == [r.body for r in with_tokens]
    assert not any(r.headers for r in without)


def test_token_cost_is_per_second_and_per_cpu_second():
    report = {
        "events": {"users_server": {"events_per_s": 1000}, "users_public": {"events_per_s": 600}},
        "phases": {
            "users_server": {"cpu_cores": {"service": 0.9, "redis": 0.1}},
            "users_public": {"cpu_cores": {"service": 0.5, "redis": 0.1}},
        },
    }
    assert bench_ingest.token_cost(report) == {"events_per_s": 0.6, "events_per_cpu_s": 1.0}
