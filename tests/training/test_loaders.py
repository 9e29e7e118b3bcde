"""Loaders: each format on small files written here, with malformed rows counted."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from training.columns import parse_times
from training.loaders import ColumnMap, LoadReport, detect_format, load_events

RR_HEADER = "timestamp,visitorid,event,itemid,transactionid\n"
RR_ROWS = [
    "1430622004384,693516,addtocart,297662,",
    "1430622011289,829044,view,60987,",
    "1430622013048,652699,view,252860,",
    "1430622013048,652699,view,252860,",  # exact duplicate
    "1430622020000,693516,transaction,297662,4000",
    "1430622030000,829044,view",  # malformed: 3 fields
    "1430622040000,829044,wishlist,60987,",  # unknown event
    "notatime,829044,view,60987,",  # bad time
    "1430622050000,,view,60987,",  # missing visitor
]


def balanced(report: LoadReport) -> bool:
    return report.rows == report.kept + sum(report.dropped.values())


def write_rr(path: Path, gz: bool) -> Path:
    text = RR_HEADER + "\n".join(RR_ROWS) + "\n\n"
    if gz:
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


@pytest.mark.parametrize("gz", [False, True])
def test_retailrocket_counts_normalises_and_drops(tmp_path: Path, gz: bool) -> None:
    path = write_rr(tmp_path / ("events.csv.gz" if gz else "events.csv"), gz)
    interactions, report = load_events(path)
    assert report.format == "retailrocket"
    assert report.rows == len(RR_ROWS)
    assert report.dropped == {
        "malformed": 1,
        "unknown_event": 1,
        "bad_time": 1,
        "missing_user": 1,
        "duplicate": 1,
    }
    assert report.unknown_events == {"wishlist": 1}
    assert report.malformed_examples == ["line 7"]
    assert report.kept == 4 and balanced(report)
    assert report.events == {"product_view": 2, "add_to_cart": 1, "purchase": 1}
    assert report.events_read == {"product_view": 3, "add_to_cart": 1, "purchase": 1}
    assert (report.users, report.items) == (3, 3)
    assert interactions.time[0] == pytest.approx(1430622004.384)
    assert np.all(np.diff(interactions.time) >= 0)
    first = interactions.users[interactions.user[0]], interactions.items[interactions.item[0]]
    assert first == ("693516", "297662")
    assert interactions.user.dtype == np.int32 and interactions.time.dtype == np.float64


def test_quoted_csv_reads_like_plain(tmp_path: Path) -> None:
    plain = tmp_path / "plain.csv"
    plain.write_text("user,item,timestamp\nu1,a,10\nu2,b,20\nu3\n")
    quoted = tmp_path / "quoted.csv"
    quoted.write_text('user,item,timestamp\n"u1",a,10\nu2,"b",20\nu3\n')
    columns = ColumnMap(event=None)
    a, report_a = load_events(plain, "csv", columns)
    b, report_b = load_events(quoted, "csv", columns)
    assert report_a.dropped == report_b.dropped == {"malformed": 1}
    assert list(a.users) == list(b.users) and list(a.items) == list(b.items)
    assert np.array_equal(a.time, b.time)


def test_generic_csv_with_mapping_iso_times_weights_and_ids(tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    path.write_text(
        "eid,who,what,when,kind,qty\n"
        "1,alice,sku-1,2024-01-02T10:00:00Z,view,1\n"
        "2,alice,sku-2,2024-01-02T11:00:00+01:00,BUY,3\n"
        "2,alice,sku-2,2024-01-02T11:00:00+01:00,BUY,3\n"  # repeated id
        "3,bob,sku-1,2024-01-03 09:30:00,Cart,2\n"
        "4,bob,,2024-01-03T09:31:00Z,view,1\n"  # missing item
        "5,bob,sku-3,2024-01-03T09:32:00Z,view,-1\n"  # negative weight
    )
    columns = ColumnMap(user="who", item="what", time="when", event="kind", weight="qty", id="eid")
    interactions, report = load_events(path, "csv", columns)
    assert report.dropped == {"duplicate": 1, "missing_item": 1, "bad_weight": 1}
    assert report.kept == 3 and balanced(report)
    assert report.events == {"product_view": 1, "add_to_cart": 1, "purchase": 1}
    # 11:00+01:00 is 10:00Z: the same instant as the first row, after it in tie order.
    assert interactions.time[0] == interactions.time[1] == 1704189600.0
    assert interactions.time[2] == 1704274200.0  # naive ISO is UTC
    assert sorted(interactions.value.tolist()) == [1.0, 2.0, 3.0]


def test_tsv_epoch_seconds_and_default_event(tmp_path: Path) -> None:
    path = tmp_path / "log.tsv"
    path.write_text("u\ti\tt\n1\t10\t1700000000\n2\t11\t1700000100.5\n")
    interactions, report = load_events(
        path,
        columns={"user": "u", "item": "i", "time": "t", "event": None, "default_event": "purchase"},
    )
    assert report.format == "tsv" and report.kept == 2
    assert report.events == {"purchase": 2}
    assert interactions.time.tolist() == [1700000000.0, 1700000100.5]


def test_parse_times_detects_the_unit() -> None:
    assert parse_times(np.array([b"1700000000", b"1700000001"])).tolist() == [1.7e9, 1.7e9 + 1]
    ms = parse_times(np.array([b"1700000000000", b"x"]))
    assert ms[0] == 1.7e9 and np.isnan(ms[1])
    iso = parse_times(np.array(["2023-11-14T22:13:20Z", "2023-11-14T22:13:20.500Z"]))
    assert iso.tolist() == [1.7e9, 1.7e9 + 0.5]
    assert parse_times(np.array([1.7e9]), "ms").tolist() == [1.7e6]


def test_parquet_with_mapping(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    table = pa.table(
        {
            "user_id": ["a", "b", None],
            "item_id": [1, 2, 3],
            "ts": pa.array([1_700_000_000_000, 1_700_000_001_000, 1_700_000_002_000]),
            "type": ["addtocart", "view", "view"],
        }
    )
    path = tmp_path / "log.parquet"
    pq.write_table(table, path)
    columns = ColumnMap(user="user_id", item="item_id", time="ts", event="type")
    interactions, report = load_events(path, columns=columns)
    assert report.format == "parquet"
    assert report.dropped == {"missing_user": 1} and report.kept == 2
    assert list(interactions.items) == ["1", "2"]
    assert interactions.time.tolist() == [1.7e9, 1.7e9 + 1]


def record(i: int, **fields: object) -> dict[str, object]:
    base = {
        "id": f"{i:032x}",
        "type": "product_view",
        "visitor_id": "v1",
        "item_id": "sku-1",
        "timestamp": f"2026-11-25T10:{i:02d}:00.000Z",
    }
    return base | fields


def test_service_jsonl_folder(tmp_path: Path) -> None:
    folder = tmp_path / "events" / "date=2026-11-25"
    folder.mkdir(parents=True)
    lines = [
        json.dumps(record(1)),
        json.dumps(record(2, type="add_to_cart", item_id="sku-2", quantity=2)),
        json.dumps(record(2, type="add_to_cart", item_id="sku-2")),  # duplicate id
        json.dumps(record(3, type="page_view", item_id=None) | {"item_id": None}),
        "{not json",
        json.dumps({"id": "x", "visitor_id": "v2"}),  # no type, no timestamp
        json.dumps(record(4, visitor_id="v2", user_id="u-7", type="purchase")),
        json.dumps(record(5, visitor_id="v2", item_id="sku-3")),
    ]
    page = json.loads(lines[3])
    del page["item_id"]
    lines[3] = json.dumps(page)
    with gzip.open(folder / "part-0001.jsonl.gz", "wt") as handle:
        handle.write("\n".join(lines) + "\n")
    assert detect_format(tmp_path / "events") == "jsonl"

    interactions, report = load_events(tmp_path / "events")
    assert report.rows == 8
    assert report.dropped == {"malformed": 2, "duplicate": 1, "no_item": 1}
    assert report.kept == 4 and balanced(report)
    assert report.events == {"product_view": 2, "add_to_cart": 1, "purchase": 1}
    assert sorted(interactions.users) == ["v1", "v2"]

    stitched, _ = load_events(tmp_path / "events", identity="stitched")
    assert sorted(stitched.users) == ["u-7", "v1"]
    logged_in, report = load_events(tmp_path / "events", identity="user")
    assert report.dropped["missing_user"] == 3 and list(logged_in.users) == ["u-7"]


RETAILROCKET = Path(__file__).parents[2].parent / "shared/data/retailrocket/events.csv.gz"


@pytest.mark.slow
@pytest.mark.skipif(not RETAILROCKET.exists(), reason=f"{RETAILROCKET} is not there")
def test_retailrocket_real_file_matches_the_data_readme() -> None:
    interactions, report = load_events(RETAILROCKET)
    # Figures from shared/data/README.md.
    assert report.rows == 2_756_101
    assert report.events_read == {
        "product_view": 2_664_312,
        "add_to_cart": 69_332,
        "purchase": 22_457,
    }
    assert report.dropped == {"duplicate": 460}
    assert report.kept == 2_756_101 - 460 == len(interactions)
    assert report.users == 1_407_580
    assert report.items == 235_061
    assert report.first_time == "2015-05-03T03:00:04.384Z"
    assert report.last_time == "2015-09-18T02:59:47.788Z"
    assert report.seconds < 30


def test_header_only_and_empty_files(tmp_path: Path) -> None:
    path = tmp_path / "head.csv"
    path.write_text("user,item,timestamp,event\n")
    interactions, report = load_events(path, "csv")
    assert len(interactions) == 0 and report.rows == 0 and report.kept == 0
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(ValueError, match="empty"):
        load_events(empty, "csv")
    with pytest.raises(ValueError, match=r"user column .visitor. is not in head\.csv"):
        load_events(path, "csv", ColumnMap(user="visitor"))
