"""``recsvc publish``, ``recsvc rollback`` and ``recsvc models``."""

from __future__ import annotations

from pathlib import Path

import click

from recsvc.keys import KeySpace
from recsvc.redis_client import UNAVAILABLE_ERRORS, command_line_url, connect
from recsvc.registry.decisions import read_decisions
from recsvc.scoring.artifact import ModelArtifact, local_versions
from recsvc.settings import Settings
from recsvc.store.models import ModelStore

HEADLINE = ("ndcg@10", "recall@20")


def _store(settings: Settings) -> ModelStore:
    try:
        url = command_line_url(settings)
    except LookupError as error:
        raise click.ClickException(str(error)) from error
    return ModelStore(connect(url, settings, socket_timeout=30), KeySpace(settings.namespace))


def models_dir_option(function):
    """``--models-dir``: the local registry, else ``RECSVC_MODELS_DIR``, else ./models
    (every command that reads or writes versions takes it alike)."""
    return click.option(
        "--models-dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help="Local registry [default: RECSVC_MODELS_DIR or ./models]",
    )(function)


def keep_option(function):
    """``--keep``: published versions to keep after publishing (``recsvc publish`` and
    ``recsvc retrain`` prune alike)."""
    return click.option(
        "--keep",
        type=click.IntRange(min=1),
        default=None,
        help="Published versions to keep [default: RECSVC_MODEL_KEEP_VERSIONS or 3]",
    )(function)


@click.command()
@click.argument("version")
@models_dir_option
@click.option("--no-current", is_flag=True, help="Publish without making it current.")
@keep_option
def publish(version: str, models_dir: Path | None, no_current: bool, keep: int | None) -> None:
    """Copy VERSION from the local registry into Redis and make it current."""
    settings = Settings.from_env()
    folder = (models_dir or settings.models_dir) / version
    if not (folder / "manifest.json").exists():
        raise click.ClickException(f"no model version at {folder}")
    store = _store(settings)
    store.publish(ModelArtifact.load(folder), make_current=not no_current, progress=True)
    pruned = store.prune(keep or settings.model_keep_versions)
    click.echo(f"published {version}" + ("" if no_current else " (current)"))
    if pruned:
        click.echo(f"deleted old versions: {', '.join(pruned)}")


@click.command()
def rollback() -> None:
    """Make the previously current version current again."""
    store = _store(Settings.from_env())
    previous = store.rollback()
    if previous is None:
        raise click.ClickException("no earlier version to roll back to")
    click.echo(f"current version is now {previous}")


@click.command()
@models_dir_option
@click.option(
    "--decisions",
    "last_decisions",
    type=click.IntRange(min=0),
    default=10,
    show_default=True,
    help="The retraining gate's latest decisions listed after the versions (0: none).",
)
def models(models_dir: Path | None, last_decisions: int) -> None:
    """List local versions with headline metrics, and which are published or current."""
    settings = Settings.from_env()
    published, current = set(), None
    try:
        store = _store(settings)
        published, current = set(store.published()), store.current_version()
    except (click.ClickException, *UNAVAILABLE_ERRORS):
        click.echo("(Redis not reachable: publication status unknown)", err=True)
    folder = models_dir or settings.models_dir
    rows = local_versions(folder)
    if not rows:
        click.echo("no local model versions")
    for manifest in rows:
        version = manifest["version"]
        model = manifest.get("model", "?")
        metrics = manifest.get("metrics", {}).get(model, {})
        figures = "  ".join(f"{m} {metrics[m]:.4f}" for m in HEADLINE if m in metrics)
        state = "current" if version == current else "published" if version in published else ""
        if not state and (manifest.get("gate") or {}).get("passed") is False:
            state = "refused"  # by recsvc retrain's gate: kept for inspection, never published
        click.echo(f"{version:<40} {model:<5} {figures:<32} {state}")
    decisions = read_decisions(folder, last_decisions) if last_decisions else []
    if decisions:
        click.echo("\ndecisions of recsvc retrain (oldest first):")
        for decision in decisions:
            click.echo(decision.summary())
