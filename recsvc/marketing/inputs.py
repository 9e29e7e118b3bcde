"""What a backtest reads besides the log: a banners file, stored banners, a catalog file.

A banners file is validated by the same ``BannerSchema`` as ``POST /v1/admin/banners``, so
a rule the API would reject is rejected here, with the banner and the field named.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from marshmallow import ValidationError

from recsvc.core.events import parse_timestamp
from recsvc.schemas.banners import BannerSchema


class InputError(Exception):
    """An input file the backtest cannot use; the message says which entry and why."""


def load_banners_file(path: Path) -> list[dict[str, Any]]:
    """Banners from a JSON file (a list, or ``{"banners": [...]}``), each validated and with
    the defaults the API fills in; each must have a unique ``id``."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InputError(f"{path}: not a readable JSON file ({error})") from error
    if isinstance(data, dict) and set(data) == {"banners"}:
        data = data["banners"]
    if not isinstance(data, list):
        raise InputError(f'{path}: want a list of banners or {{"banners": [...]}}')
    schema = BannerSchema()
    banners: list[dict[str, Any]] = []
    for index, raw in enumerate(data):
        name = _banner_name(raw, index)
        try:
            banner = schema.load(raw)
        except ValidationError as error:
            problems = "; ".join(f"{field}: {reason}" for field, reason in _flatten(error.messages))
            raise InputError(f"{path}: {name}: {problems}") from error
        if not banner.get("id"):
            raise InputError(f"{path}: {name}: id: Missing; every banner needs an id here.")
        if any(b["id"] == banner["id"] for b in banners):
            raise InputError(f"{path}: {name}: id: Used by an earlier banner.")
        banners.append(banner)
    return banners


def _banner_name(raw: Any, index: int) -> str:
    if isinstance(raw, dict) and isinstance(raw.get("id"), str):
        return f"banner {raw['id']!r} (#{index})"
    return f"banner #{index}"


def _flatten(messages: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, str]]:
    """marshmallow's nested messages as ("rules.stages.0", "Must be one of ...") pairs;
    a schema-level message (``_schema``) belongs to the object that holds it."""
    if isinstance(messages, dict):
        for key, value in messages.items():
            yield from _flatten(value, path if key == "_schema" else (*path, str(key)))
        return
    reasons = messages if isinstance(messages, list) else [messages]
    yield ".".join(path) or "banner", " ".join(str(reason) for reason in reasons)


def normalise_stored(banner: dict[str, Any]) -> dict[str, Any]:
    """A banner read from Redis, as targeting wants it: rule times in epoch seconds (a
    stored banner may keep them in ISO 8601, as written)."""
    rules = dict(banner.get("rules") or {})
    for kind in ("start", "end"):
        if isinstance(rules.get(kind), str):
            rules[kind] = parse_timestamp(rules[kind]).timestamp()
    return {"priority": 0, **banner, "rules": rules}


def load_catalog(path: Path) -> dict[str, str]:
    """Item id -> category, from the generator's ``items.csv`` (columns ``item_id`` and
    ``category``) or JSON lines of catalog items. Items without a category are left out."""
    path = Path(path)
    try:
        if path.suffix.lower() == ".csv":
            return _catalog_csv(path)
        return _catalog_jsonl(path)
    except OSError as error:
        raise InputError(f"{path}: cannot read ({error})") from error


def _catalog_csv(path: Path) -> dict[str, str]:
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        if not {"item_id", "category"} <= set(reader.fieldnames or ()):
            raise InputError(f"{path}: want a header with item_id and category")
        return {row["item_id"]: row["category"] for row in reader if row["category"]}


def _catalog_jsonl(path: Path) -> dict[str, str]:
    categories: dict[str, str] = {}
    with path.open() as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
                item_id, category = item["item_id"], item.get("category")
            except (json.JSONDecodeError, KeyError, TypeError) as error:
                raise InputError(f"{path}:{number}: want a JSON object with item_id") from error
            if category:
                categories[str(item_id)] = str(category)
    return categories
