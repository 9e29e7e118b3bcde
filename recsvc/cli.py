"""The ``recsvc`` console command.

Subcommands live beside the code they drive and are imported only when called, so
``recsvc export-events`` does not pay for numpy and ``recsvc serve`` does not pay for
the generator.
"""

from __future__ import annotations

import importlib

import click

# name -> "module:attribute" of a click command
SUBCOMMANDS: dict[str, str] = {
    "serve": "recsvc.web.serve:serve",
    "generate": "recsvc.synth.commands:generate",
    "replay": "recsvc.synth.commands:replay",
    "export-events": "recsvc.eventlog.commands:export_events",
    "demo": "recsvc.demo:demo",
    "train": "training.commands:train",
    "evaluate": "training.commands:evaluate",
    "compare": "training.gate_commands:compare",
    "retrain": "training.gate_commands:retrain",
    "publish": "recsvc.registry.commands:publish",
    "rollback": "recsvc.registry.commands:rollback",
    "models": "recsvc.registry.commands:models",
    "backtest-rules": "recsvc.marketing.commands:backtest_rules",
    "identity-token": "recsvc.identity.commands:identity_token",
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use (click's documented pattern)."""

    def __init__(self, *args, lazy: dict[str, str], **kwargs):
        super().__init__(*args, **kwargs)
        self.lazy = lazy

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *self.lazy])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy:
            module_name, attribute = self.lazy[cmd_name].split(":")
            return getattr(importlib.import_module(module_name), attribute)
        return super().get_command(ctx, cmd_name)


@click.group(cls=LazyGroup, lazy=SUBCOMMANDS)
@click.version_option(package_name="recsvc")
def main() -> None:
    """recsvc: onsite personalization and recommendations for online stores."""


if __name__ == "__main__":
    main()
