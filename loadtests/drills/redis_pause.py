"""Drill: Redis paused (SIGSTOP) under load for 5 s, then resumed (SIGCONT).

    python -m loadtests.drills.redis_pause [--duration 30] [--outage 5] [--at 10] [...]

The options and checks of ``loadtests.drills.redis_outage`` (a paused Redis accepts
connections and then says nothing: every read waits for its timeout, the breaker must cut
that short), and: no request waited longer than ``MAX_WAIT_S`` (the event writer's socket
timeout, with retries and its transaction's few commands: no thread stuck on Redis), no
gunicorn worker timed out or was replaced. Events sent while Redis was paused may have been
written when it resumed although answered 503 (the transaction was in Redis's queue): the
drill counts them; a client that retries sends them again (at-least-once).
"""

from __future__ import annotations

import argparse

from loadtests.drills import redis_outage, support

# The events writer waits up to redis_socket_timeout (1 s) for a reply and retries a lost
# connection twice; anything near gunicorn's timeout (30 s) would be a stuck thread.
MAX_WAIT_S = 5.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    redis_outage.add_arguments(parser, duration=30, outage=5, at=10)
    args = parser.parse_args()

    def resume(server: support.OwnRedis) -> float:
        server.resume()
        return 0.0

    verdict = redis_outage.run(args, "redis_pause", lambda server: server.pause(), resume)
    slowest = verdict.figures["slowest request s"]
    verdict.check(
        f"no request waited longer than {MAX_WAIT_S:.0f} s (gunicorn's timeout is 30 s)",
        slowest <= MAX_WAIT_S,
        f"slowest {slowest} s",
    )
    verdict.check(
        "no worker timed out or was replaced",
        verdict.figures["workers replaced"] == 0
        and verdict.figures["gunicorn worker timeouts in the log"] == 0,
    )
    raise SystemExit(verdict.report())


if __name__ == "__main__":
    main()
