import numpy as np
import pytest

from recsvc.scoring.artifact import (
    ModelArtifact,
    config_from_dict,
    local_versions,
    session_arrays,
    session_model_from_arrays,
)
from recsvc.scoring.session_model import SessionConfig, recommend_session, tuned_blend
from training.sessions import Sessions, fit_session_model


def test_round_trip(tmp_path, make_artifact):
    artifact = make_artifact()
    folder = artifact.save(tmp_path)
    loaded = ModelArtifact.load(folder)
    assert loaded.version == "v1" and loaded.item_factors.dtype == np.float32
    np.testing.assert_array_equal(loaded.user_factors, artifact.user_factors)
    np.testing.assert_array_equal(loaded.similar_items, artifact.similar_items)
    assert list(loaded.item_ids[:2]) == ["i0", "i1"]
    assert loaded.manifest["arrays"]["item_factors"] == [30, 8]
    assert not list(tmp_path.glob(".*partial"))


def test_session_arrays_round_trip_and_are_optional(tmp_path, make_artifact):
    artifact = make_artifact()
    artifact.session = {
        "popularity": np.linspace(0, 1, 30, dtype=np.float32),
        "walk.indptr": np.arange(31, dtype=np.int64),
    }
    loaded = ModelArtifact.load(artifact.save(tmp_path))
    assert set(loaded.session) == {"popularity", "walk.indptr"}
    np.testing.assert_array_equal(loaded.session["walk.indptr"], artifact.session["walk.indptr"])
    bare = make_artifact("v2")
    assert ModelArtifact.load(bare.save(tmp_path)).session == {}


def test_local_versions_newest_first(tmp_path, make_artifact):
    make_artifact("old", created="2026-01-01").save(tmp_path)
    make_artifact("new", created="2026-02-01").save(tmp_path)
    assert [m["version"] for m in local_versions(tmp_path)] == ["new", "old"]


def test_mismatched_shapes_are_refused():
    with pytest.raises(ValueError):
        ModelArtifact(
            version="bad",
            manifest={},
            item_ids=["a"],
            user_ids=["u"],
            item_factors=np.zeros((2, 4)),
            user_factors=np.zeros((1, 4)),
            popular=[],
            trending=[],
            similar_items=np.zeros((2, 1)),
            similar_scores=np.zeros((2, 1)),
        )


def test_config_survives_its_dict():
    config = tuned_blend()
    assert config_from_dict(config.to_dict()) == config
    assert config_from_dict({"recent": {"weight": 2.0}}) == SessionConfig(
        transitions=None, recent=config_from_dict({"recent": {"weight": 2.0}}).recent
    )
    assert config_from_dict({"recent": {"weight": 2.0}}).recent.weight == 2.0


def test_arrays_rebuild_the_same_model():
    model = fit_session_model(
        Sessions.of([[0, 1, 2], [3, 0], [0, 1, 2], [3, 0], [1, 2]], 4), tuned_blend()
    )
    arrays = session_arrays(model)
    assert "walk.indptr" in arrays and "session_positions.data" in arrays
    rebuilt = session_model_from_arrays(
        config_from_dict(model.config.to_dict()), model.items, arrays
    )
    for session in ([0], [3, 0], [0, 1, 2]):
        want, got = recommend_session(model, session, 3), recommend_session(rebuilt, session, 3)
        assert want.ids.tolist() == got.ids.tolist()
        np.testing.assert_array_equal(want.scores, got.scores)
