"""publish, rollback and models from the command line, against real Redis."""

from click.testing import CliRunner

from recsvc.registry.commands import models, publish, rollback


def run(command, *args):
    return CliRunner().invoke(command, list(args))


def test_publish_rollback_and_list(env, make_artifact):
    for version, created in (("v1", "2026-01-01"), ("v2", "2026-01-02")):
        artifact = make_artifact(version, created=created)
        artifact.manifest["metrics"] = {"als": {"ndcg@10": 0.25, "recall@20": 0.5}}
        artifact.save(env)
        assert run(publish, version).exit_code == 0
    listing = run(models).output.splitlines()
    assert listing[0].startswith("v2") and listing[0].endswith("current")
    assert "ndcg@10 0.2500" in listing[0] and listing[1].endswith("published")
    result = run(rollback)
    assert result.exit_code == 0 and "v1" in result.output
    assert run(models).output.splitlines()[1].endswith("current")


def test_publish_unknown_version_fails_clearly(env):
    result = run(publish, "nope")
    assert result.exit_code != 0 and "no model version" in result.output


def test_rollback_with_nothing_earlier(env, make_artifact):
    make_artifact("only").save(env)
    run(publish, "only")
    result = run(rollback)
    assert result.exit_code != 0 and "no earlier version" in result.output


def test_keep_prunes_old_versions(env, make_artifact):
    for n in range(4):
        make_artifact(f"v{n}").save(env)
        run(publish, f"v{n}", "--keep", "2")
    states = {line.split()[0]: line.split()[-1] for line in run(models).output.splitlines()}
    assert states["v3"] == "current" and states["v2"] == "published"
    assert states["v0"] not in {"current", "published"}  # pruned from Redis, kept on disk
