"""Loaders: each format on small files written here, with malformed rows counted."""

from __future__ import annotations

import gzip
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from training.columns import LoadError, parse_times
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


# A ratings log in the common user,item,rating,timestamp form: no event column.
RATINGS = [
    ("u1", "a", 5, 1_700_000_000),
    ("u1", "b", 2, 1_700_000_060),
    ("u1", "c", 4, 1_700_000_120),
    ("u2", "a", 3, 1_700_086_400),
    ("u2", "c", 5, 1_700_086_460),
]


def iso(epoch: int) -> str:
    return np.datetime_as_string(np.datetime64(epoch, "s"), unit="s") + "Z"


def write_ratings(tmp_path: Path, shape: str) -> tuple[Path, str]:
    """The ratings in one of the shapes a data scientist brings: (path, format)."""
    times = {
        "csv-epoch-s": [str(t) for *_, t in RATINGS],
        "csv-epoch-ms": [str(t * 1000) for *_, t in RATINGS],
        "csv-iso": [iso(t) for *_, t in RATINGS],
        "tsv-iso": [iso(t) for *_, t in RATINGS],
    }
    if shape == "parquet":
        pa = pytest.importorskip("pyarrow")
        pq = pytest.importorskip("pyarrow.parquet")
        columns = list(zip(*RATINGS, strict=True))
        table = pa.table(
            {
                "user": list(columns[0]),
                "item": list(columns[1]),
                "rating": pa.array(columns[2], pa.int8()),
                "ts": pa.array([t * 1_000_000 for t in columns[3]], pa.timestamp("us")),
            }
        )
        path = tmp_path / "ratings.parquet"
        pq.write_table(table, path)
        return path, "parquet"
    sep = "\t" if shape.startswith("tsv") else ","
    lines = [sep.join(("user", "item", "rating", "ts"))]
    lines += [
        sep.join((u, i, str(r), t)) for (u, i, r, _), t in zip(RATINGS, times[shape], strict=True)
    ]
    path = tmp_path / ("ratings.tsv" if sep == "\t" else "ratings.csv")
    path.write_text("\n".join(lines) + "\n")
    return path, "auto"


@pytest.mark.parametrize("shape", ["csv-epoch-s", "csv-epoch-ms", "csv-iso", "tsv-iso", "parquet"])
def test_ratings_log_without_event_column_and_a_rating_threshold(
    tmp_path: Path, shape: str
) -> None:
    path, fmt = write_ratings(tmp_path, shape)
    columns = ColumnMap(user="user", item="item", time="ts", event=None, weight="rating")
    everything, report = load_events(path, fmt, columns)
    assert report.kept == 5 and report.dropped == {} and balanced(report)
    assert report.events == {"product_view": 5}  # every row one interaction
    assert everything.time[0] == 1_700_000_000.0 and everything.time[-1] == 1_700_086_460.0
    assert everything.value.tolist() == [5.0, 2.0, 4.0, 3.0, 5.0]
    assert report.columns["event"] is None and report.columns["weight"] == "rating"
    assert report.roles_line().startswith("no event column: every row is one interaction")

    liked, report = load_events(path, fmt, replace(columns, min_weight=4))
    assert report.dropped == {"below_min_weight": 2} and report.kept == 3 and balanced(report)
    assert report.examples["below_min_weight"] == "'2'" or shape == "parquet"
    pairs = {(liked.users[u], liked.items[i]) for u, i in zip(liked.user, liked.item, strict=True)}
    assert pairs == {("u1", "a"), ("u1", "c"), ("u2", "c")}
    assert "rows under 4 dropped" in report.roles_line()


def test_a_column_not_in_the_file_names_its_role(tmp_path: Path) -> None:
    path, _ = write_ratings(tmp_path, "csv-iso")
    # The ColumnMap default event column "event" is not in a ratings log.
    with pytest.raises(LoadError, match=r"event column 'event' is not in ratings\.csv") as error:
        load_events(path, "csv", ColumnMap(time="ts"))
    assert error.value.role == "event" and "rating" in str(error.value)
    with pytest.raises(LoadError, match="needs a weight column") as error:
        load_events(path, "csv", ColumnMap(time="ts", event=None, min_weight=4))
    parquet, _ = write_ratings(tmp_path, "parquet")
    with pytest.raises(LoadError, match="weight column 'stars'") as error:
        load_events(parquet, "parquet", ColumnMap(time="ts", event=None, weight="stars"))


@pytest.mark.parametrize(
    ("columns", "role", "words"),
    [
        ({"time_unit": "iso"}, "time_unit", "not 'iso' times"),
        ({"time": "item"}, "time", "bad_time of column 'item' (e.g. 'a')"),
        ({"weight": "user"}, "weight", "bad_weight of column 'user'"),
        ({"weight": "rating", "min_weight": 6}, "min_weight", "below_min_weight"),
    ],
)
def test_a_log_with_no_row_kept_says_which_column_and_why(
    tmp_path: Path, columns: dict, role: str, words: str
) -> None:
    path, _ = write_ratings(tmp_path, "csv-epoch-s")
    mapping = {"user": "user", "item": "item", "time": "ts", "event": None} | columns
    with pytest.raises(LoadError, match=r"0 rows of ratings\.csv kept") as error:
        load_events(path, "csv", mapping)
    assert error.value.role == role and words in str(error.value)


def test_unknown_event_names_are_listed_when_nothing_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    path.write_text("user,item,timestamp,event\nu,a,1700000000,rated\nu,b,1700000001,liked\n")
    with pytest.raises(LoadError, match=r"unknown_event of column 'event' \(liked, rated\)"):
        load_events(path, "csv")


def test_times_outside_1900_to_2200_do_not_parse() -> None:
    seconds = parse_times(np.array([b"1700000000", b"1700000000000"]), "s")
    assert seconds[0] == 1.7e9 and np.isnan(seconds[1])  # milliseconds read as seconds
    assert np.isnan(parse_times(np.array(["1700000000"]), "iso")).all()  # year 1700000000


@pytest.mark.slow
@pytest.mark.skipif(not RETAILROCKET.exists(), reason=f"{RETAILROCKET} is not there")
def test_retailrocket_through_the_generic_csv_path_reads_as_its_own_loader() -> None:
    own, own_report = load_events(RETAILROCKET)
    columns = ColumnMap(user="visitorid", item="itemid", time="timestamp", event="event")
    generic, report = load_events(RETAILROCKET, "csv", columns)
    assert report.format == "csv" and report.kept == own_report.kept
    assert report.dropped == own_report.dropped and report.events == own_report.events
    for name in ("user", "item", "time", "event", "value", "users", "items"):
        assert np.array_equal(getattr(own, name), getattr(generic, name)), name


def test_column_flags_on_a_retailrocket_header_read_it_as_csv_and_on_jsonl_are_refused(
    tmp_path: Path,
) -> None:
    path = write_rr(tmp_path / "events.csv", gz=False)
    # The caller's own map: visitors as items, say; auto would otherwise take RR's.
    columns = ColumnMap(user="itemid", item="visitorid", time="timestamp", event="event")
    interactions, report = load_events(path, columns=columns)
    assert report.format == "csv" and "297662" in set(interactions.users)
    folder = tmp_path / "log"
    folder.mkdir()
    (folder / "events.jsonl").write_text("")
    with pytest.raises(LoadError, match="column flags apply to CSV, TSV and Parquet only"):
        load_events(folder, columns=ColumnMap(event=None))
