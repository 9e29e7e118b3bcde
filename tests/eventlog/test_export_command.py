"""export-events on the embedded Redis: it joins the service's server, never owns one."""

from click.testing import CliRunner

from recsvc.eventlog.commands import export_events
from recsvc.redis_client import connect, start_embedded


def test_without_redis_url_or_a_running_server_it_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.setenv("RECSVC_DATA_DIR", str(tmp_path / "var"))
    result = CliRunner().invoke(export_events, ["--out", str(tmp_path / "logs"), "--once"])
    assert result.exit_code != 0
    assert "start `recsvc serve` first" in result.output


def test_joins_the_running_embedded_server_and_leaves_it_running(tmp_path, monkeypatch):
    server = start_embedded(tmp_path / "var")
    try:
        monkeypatch.delenv("REDIS_URL", raising=False)
        monkeypatch.setenv("RECSVC_DATA_DIR", str(tmp_path / "var"))
        result = CliRunner().invoke(export_events, ["--out", str(tmp_path / "logs"), "--once"])
        assert result.exit_code == 0, result.output
        assert connect(server.url).ping()  # still serving the service after the export
    finally:
        server.stop()
