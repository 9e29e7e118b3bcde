"""``recsvc identity-token``: what a store backend's developer runs to try the scheme."""

import time

from click.testing import CliRunner

from recsvc.cli import main
from recsvc.identity.tokens import verify_token

SECRET = "a-secret-of-at-least-thirty-two-chars"


def test_prints_a_token_the_service_accepts():
    result = CliRunner().invoke(
        main,
        ["identity-token", "--user", "u-1", "--visitor", "v-1", "--ttl", "600"],
        env={"RECSVC_IDENTITY_SECRETS": f"{SECRET},an-older-secret-being-rotated-out-x"},
    )
    assert result.exit_code == 0, result.output
    claims = verify_token(result.output.strip(), (SECRET,), time.time(), 3600)
    assert (claims.user_id, claims.visitor_id) == ("u-1", "v-1")


def test_needs_a_secret_and_an_id():
    runner = CliRunner()
    no_secret = runner.invoke(main, ["identity-token", "--user", "u-1"], env={})
    assert no_secret.exit_code != 0 and "RECSVC_IDENTITY_SECRETS" in no_secret.output
    no_id = runner.invoke(main, ["identity-token"], env={"RECSVC_IDENTITY_SECRETS": SECRET})
    assert no_id.exit_code != 0 and "--user" in no_id.output
