"""The retraining gate's decisions record in the local registry."""

from recsvc.registry.decisions import DECISIONS_FILE, Decision, read_decisions, record_decision

GATE = {
    "metric": "ndcg@10",
    "candidate": 0.1276,
    "current": 0.1844,
    "difference": -0.0568,
    "difference_interval": [-0.0847, -0.0302],
    "wilcoxon_p": 5.5e-05,
    "visitors": 118,
}


def test_decisions_are_appended_and_read_back_oldest_first(tmp_path):
    first = Decision("2026-03-01T00:00:00.000Z", "published", "no current version", "v1")
    second = Decision("2026-03-02T00:00:00.000Z", "refused", "worse", "v2", "v1", {"gate": GATE})
    for decision in (first, second):
        record_decision(tmp_path, decision)
    assert read_decisions(tmp_path) == [first, second]
    assert read_decisions(tmp_path, last=1) == [second]
    assert read_decisions(tmp_path / "missing") == []


def test_a_torn_last_line_is_skipped(tmp_path):
    record_decision(tmp_path, Decision("2026-03-01T00:00:00.000Z", "skipped", "nothing fresh"))
    with (tmp_path / DECISIONS_FILE).open("a") as out:
        out.write('{"time": "2026-03-02T00:00:00.000Z", "outc')
    assert [d.outcome for d in read_decisions(tmp_path)] == ["skipped"]


def test_the_summary_names_the_versions_and_the_gate_figures():
    line = Decision("2026-03-02T00:00:00.000Z", "refused", "worse", "v2", "v1", {"gate": GATE})
    text = line.summary()
    assert text.startswith("2026-03-02T00:00:00.000Z  refused   v2 vs v1")
    assert "ndcg@10 0.1276 vs 0.1844" in text and "95% CI -0.0847 – -0.0302" in text
    assert "118 visitors" in text
    alone = {
        "metric": "ndcg@10",
        "candidate": 0.4,
        "candidate_interval": [0.35, 0.45],
        "visitors": 90,
    }
    first = Decision("t", "published", "first", "v1", figures={"gate": alone}).summary()
    assert "v1 vs -  ndcg@10 0.4000 (95% CI 0.3500 – 0.4500, 90 visitors)" in first
