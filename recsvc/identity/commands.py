"""``recsvc identity-token``: mint an identity token the way a store's backend does."""

from __future__ import annotations

import click

from recsvc.identity.tokens import mint_token
from recsvc.settings import Settings


@click.command("identity-token")
@click.option("--user", "user_id", default=None, help="The logged-in user id (claim sub).")
@click.option("--visitor", "visitor_id", default=None, help="The visitor id (claim vid).")
@click.option("--ttl", default=86400, show_default=True, help="Seconds until the token expires.")
def identity_token(user_id: str | None, visitor_id: str | None, ttl: int) -> None:
    """Print an identity token for --user and/or --visitor, signed with the first secret
    of RECSVC_IDENTITY_SECRETS. Send it as X-Identity-Token (README, "Identity")."""
    secrets = Settings.from_env().identity_secrets
    if not secrets:
        raise click.UsageError("RECSVC_IDENTITY_SECRETS is not set")
    if user_id is None and visitor_id is None:
        raise click.UsageError("give --user, --visitor or both")
    try:
        click.echo(mint_token(secrets[0], user_id=user_id, visitor_id=visitor_id, ttl_seconds=ttl))
    except ValueError as error:
        raise click.UsageError(str(error)) from error
