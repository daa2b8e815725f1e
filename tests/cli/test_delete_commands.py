"""Deleting from the command line: a file of pairs, a rating, an item, users; the registry
then says which versions hold what was deleted, and `recsys models forget` trains them
anew without it."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from recsys.cli import app
from recsys.collab.recommender import load_recommender
from recsys.data.catalog import read_user_ratings
from recsys.db.engine import make_engine
from recsys.jobs.model_versions import active_version, list_versions
from tests.cli.test_commands import counts
from tests.servers import ranking_version

runner = CliRunner()


def test_deletions_from_a_file_are_validated_and_all_or_nothing(
    cli_env: str, tmp_path: Path
) -> None:
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    (tmp_path / "r.csv").write_text("user_id,item_id,rating\na,x,3\na,y,4\nb,x,5\n")
    assert runner.invoke(app, ["ingest", "ratings", str(tmp_path / "r.csv")]).exit_code == 0

    bad = tmp_path / "bad.csv"
    bad.write_text("user_id,item_id\na,x\n,y\n")  # row 2 has no user
    result = runner.invoke(app, ["ingest", "deletions", str(bad)])
    assert result.exit_code == 1
    assert "bad.csv: row 2" in result.output
    assert "nothing was deleted" in result.output
    assert counts(cli_env)[0] == 3

    good = tmp_path / "gone.csv"
    good.write_text("user_id,item_id\na,x\na,x\nb,nothing\nnobody,x\n")
    result = runner.invoke(app, ["ingest", "deletions", str(good)])
    assert result.exit_code == 0, result.output
    assert "pairs: 4 read; ratings: 1 deleted" in result.output
    engine = make_engine(cli_env)
    assert set(read_user_ratings(engine, "a")["item_id"]) == {"y"}

    assert runner.invoke(app, ["delete", "rating", "a", "y"]).exit_code == 0
    again = runner.invoke(app, ["delete", "rating", "a", "y"])
    assert again.exit_code == 1
    assert "has no rating of item 'y'" in again.output
    engine.dispose()


def test_erasing_and_deleting_then_forgetting_by_training_again(
    cli_env: str, tmp_path: Path
) -> None:
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    engine = make_engine(cli_env)
    ranking_version(engine, tmp_path / "artifacts")
    trained = load_recommender(active_version(engine, "ranking").artifact_path)  # type: ignore[union-attr]
    assert {"u1", "u2"} <= set(trained.user_map.ids)
    assert "i5" in set(trained.item_map.ids)

    (tmp_path / "erase.csv").write_text("user_id\nu2\nstranger\n")
    erased = runner.invoke(app, ["delete", "user", "u1", "--file", str(tmp_path / "erase.csv")])
    assert erased.exit_code == 0, erased.output
    assert "erased 2 users" in erased.output
    assert "1 ids were not in the database" in erased.output
    deleted = runner.invoke(app, ["delete", "item", "i5"])
    assert deleted.exit_code == 0
    assert "deleted item 'i5'" in deleted.output
    assert runner.invoke(app, ["delete", "item", "i5"]).exit_code == 1

    listed = runner.invoke(app, ["models", "list"])
    assert "holds 3 erased users/deleted items" in listed.output
    forgot = runner.invoke(app, ["models", "forget"])
    assert forgot.exit_code == 0, forgot.output
    fresh = active_version(engine, "ranking")
    assert fresh is not None
    assert fresh.id == 2
    retrained = load_recommender(fresh.artifact_path)  # type: ignore[arg-type]
    assert not {"u1", "u2", "stranger"} & set(retrained.user_map.ids)
    assert "i5" not in set(retrained.item_map.ids)
    assert [v.deleted_since_training for v in list_versions(engine)] == [0, 3]
    again = runner.invoke(app, ["models", "forget"])
    assert "no active version holds" in again.output
    engine.dispose()
