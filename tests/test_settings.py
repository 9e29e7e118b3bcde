from pathlib import Path

from recsvc.settings import Settings


def test_defaults_and_environment():
    settings = Settings.from_env(
        {
            "REDIS_URL": "redis://h:1/2",
            "RECSVC_VISIT_GAP_SECONDS": "600",
            "RECSVC_PUBLIC_KEYS": "a, b,,",
            "RECSVC_HIGH_VALUE_MIN_SPEND": "99.5",
            "RECSVC_DATA_DIR": "/x/y",
            "UNRELATED": "1",
        }
    )
    assert settings.redis_url == "redis://h:1/2"
    assert settings.visit_gap_seconds == 600
    assert settings.public_keys == ("a", "b")
    assert settings.high_value_min_spend == 99.5
    assert settings.data_dir == Path("/x/y")
    assert settings.auth_enabled
    assert Settings.from_env({}).visit_gap_seconds == 1800
    assert not Settings.from_env({}).auth_enabled
