"""The command line, as a user runs it: exit codes and messages."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from recsys.cli import app
from recsys.db.engine import make_engine
from recsys.db.tables import items, ratings, users

runner = CliRunner()


def counts(database_url: str) -> tuple[int, int, int]:
    engine = make_engine(database_url)
    with engine.connect() as connection:
        result = tuple(
            connection.execute(select(func.count()).select_from(t)).scalar_one()
            for t in (ratings, users, items)
        )
    engine.dispose()
    return result  # type: ignore[return-value]


def test_ingest_before_migrating_says_to_upgrade(cli_env: str, tmp_path: Path) -> None:
    (tmp_path / "r.csv").write_text("user_id,item_id,rating\na,b,3\n")
    result = runner.invoke(app, ["ingest", "ratings", str(tmp_path / "r.csv")])
    assert result.exit_code == 1
    assert "recsys db upgrade" in result.output


def test_ingest_reports_the_bad_row_and_writes_nothing(cli_env: str, tmp_path: Path) -> None:
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    path = tmp_path / "r.csv"
    path.write_text("u,i,stars\na,b,3\nc,d,4\ne,f,11\n")

    result = runner.invoke(
        app,
        [
            "ingest",
            "ratings",
            str(path),
            "--user-col",
            "u",
            "--item-col",
            "i",
            "--rating-col",
            "stars",
        ],
    )

    assert result.exit_code == 1
    assert f"{path}: row 3: stars 11 is outside the allowed range [0.5, 5]" in result.output
    assert "nothing was written" in result.output
    assert counts(cli_env) == (0, 0, 0)

    ok = runner.invoke(
        app,
        [
            "ingest",
            "ratings",
            str(path),
            "--user-col",
            "u",
            "--item-col",
            "i",
            "--rating-col",
            "stars",
            "--max-rating",
            "11",
        ],
    )
    assert ok.exit_code == 0, ok.output
    assert "3 new" in ok.output
    assert counts(cli_env) == (3, 3, 3)


@pytest.mark.parametrize(
    "bounds",
    [
        ["--min-rating", "nan", "--max-rating", "nan"],
        ["--min-rating", "nan"],
        ["--max-rating", "inf"],
        ["--min-rating", "5", "--max-rating", "1"],
    ],
)
def test_ingest_refuses_a_rating_range_that_is_empty_or_not_finite(
    cli_env: str, tmp_path: Path, bounds: list[str]
) -> None:
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    path = tmp_path / "r.csv"
    path.write_text("user_id,item_id,rating\na,b,7\nc,d,-100\n")
    result = runner.invoke(app, ["ingest", "ratings", str(path), *bounds])
    assert result.exit_code == 1
    assert "--min-rating/--max-rating" in result.output
    assert counts(cli_env) == (0, 0, 0)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--model", "ials"], "ials ranks items and predicts no ratings: use --objective ranking"),
        (
            ["--objective", "ranking", "--model", "blend", "--members", "ease,hybrid"],
            "a ranking blend takes two or more of dot, nn, ease, ials, not ease, hybrid",
        ),
        (["--members", "ease,ials"], "members make a blend: use --model blend, not auto"),
        (["--split", "yesterday"], "--split must be cutoff, time, temporal or random"),
    ],
)
def test_train_refuses_settings_that_do_not_fit_before_reading_anything(
    cli_env: str, options: list[str], message: str
) -> None:
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    result = runner.invoke(app, ["train", *options])
    assert result.exit_code == 1
    assert message in result.output


def test_an_unreachable_database_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from recsys.settings import get_settings

    monkeypatch.setenv("RECSYS_DATABASE_URL", "postgresql+psycopg://nobody@127.0.0.1:1/none")
    get_settings.cache_clear()
    try:
        result = runner.invoke(app, ["db", "upgrade"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 1
    assert (
        "error: database postgresql+psycopg://nobody@127.0.0.1:1/none: OperationalError"
        in result.output
    )


@pytest.mark.slow
def test_movielens_loads_exactly_once(cli_env: str) -> None:
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    first = runner.invoke(app, ["load", "movielens-100k"])
    assert first.exit_code == 0, first.output
    assert counts(cli_env) == (100_000, 943, 1_682)

    second = runner.invoke(app, ["load", "movielens-100k"])
    assert second.exit_code == 0
    assert "0 new, 0 updated; users: 0 new, 0 updated; items: 0 new, 0 updated" in second.output
    assert counts(cli_env) == (100_000, 943, 1_682)

    engine = make_engine(cli_env)
    with engine.connect() as connection:
        user = connection.execute(select(users).where(users.c.external_id == "1")).one()
        film = connection.execute(select(items).where(items.c.external_id == "50")).one()
    engine.dispose()
    assert (user.age, user.gender, user.occupation, user.zip_code) == (
        24,
        "M",
        "technician",
        "85711",
    )
    assert film.title == "Star Wars (1977)"
    assert film.genres == ["Action", "Adventure", "Romance", "Sci-Fi", "War"]
    assert str(film.release_date) == "1977-01-01"


@pytest.mark.slow
def test_quickstart_is_idempotent(cli_env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import uvicorn

    served: list[uvicorn.Config] = []

    def run(server: uvicorn.Server) -> None:  # instead of listening
        served.append(server.config)
        server.started = True

    monkeypatch.setattr(uvicorn.Server, "run", run)
    # serve sets the metrics folder and thread limits in the environment: kept to this test.
    monkeypatch.setattr(os, "environ", os.environ.copy())
    first = runner.invoke(app, ["quickstart", "--no-serve"])
    assert first.exit_code == 0, first.output
    assert not served
    second = runner.invoke(app, ["quickstart"])  # ends by serving, as `make run` does
    assert second.exit_code == 0, second.output
    # As `recsys serve` by default: no access log (a Typer default passed on by a call
    # from Python once switched it on).
    assert served[0].access_log is False
    assert served[0].workers == 1
    assert "not loading MovieLens-100k again" in second.output
    assert "data set: 100,000 ratings, 943 users, 1,682 items" in second.output
    assert counts(cli_env) == (100_000, 943, 1_682)


def test_evaluate_chooses_on_the_training_part_and_reports_the_test_part(cli_env: str) -> None:
    from recsys.data.splits import temporal_split
    from recsys.db.ingest import ingest
    from recsys.db.sources import from_frame
    from tests.factories import taste_groups_with_unrated

    frame = pd.concat(taste_groups_with_unrated(), ignore_index=True)
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    engine = make_engine(cli_env)
    ingest(engine, from_frame("ratings", frame, 500))
    engine.dispose()

    result = runner.invoke(app, ["evaluate", "--objective", "ranking", "--valid-pct", "0.2"])
    assert result.exit_code == 0, result.output
    assert "auto chose " in result.output  # EASE, iALS or a blend, by the hold-out
    assert "then refitted on all of it" in result.output
    first_words = {line.split()[0] for line in result.output.splitlines()}
    assert "popularity" in first_words
    assert first_words & {"EASE", "IALS", "Blend"}
    # Ranked: the users with a liked rating in their latest 20%, which the training
    # part (the rest) knows, item included.
    split = temporal_split(pd.factorize(frame["user_id"])[0], frame["timestamp"].to_numpy(), 0.2)
    train, test = frame.iloc[split.train], frame.iloc[split.valid]
    test = test[test["item_id"].isin(train["item_id"]) & (test["rating"] >= 4)]
    assert f"{test['user_id'].nunique()} users with a test rating >= 4 were ranked" in result.output


def test_train_writes_its_figures_for_the_textfile_collector(cli_env: str, tmp_path: Path) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    from recsys.db.ingest import ingest
    from recsys.db.sources import from_frame
    from tests.factories import two_taste_groups

    train, _ = two_taste_groups()
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    engine = make_engine(cli_env)
    ingest(engine, from_frame("ratings", train, 500))
    engine.dispose()
    path = tmp_path / "textfile" / "recsys_train.prom"
    result = runner.invoke(
        app, ["train", "--epochs", "2", "--factors", "4", "--metrics-file", str(path)]
    )
    assert result.exit_code == 0, result.output
    values = {
        (sample.name, sample.labels.get("name")): sample.value
        for family in text_string_to_metric_families(path.read_text())
        for sample in family.samples
    }
    assert values[("recsys_training_ratings", None)] == len(train)
    assert values[("recsys_training_promoted", None)] == 1.0
    assert values[("recsys_training_duration_seconds", None)] > 0
    assert values[("recsys_training_metric", "epochs")] == 2
    assert 0 < values[("recsys_training_metric", "rmse")] < 5


@pytest.mark.slow
def test_export_writes_everyones_answer_of_the_api(cli_env: str, tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from api.main import create_app
    from recsys.settings import get_settings

    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    assert runner.invoke(app, ["load", "movielens-100k"]).exit_code == 0
    trained = runner.invoke(app, ["train", "--objective", "ranking"])
    assert trained.exit_code == 0, trained.output
    with TestClient(create_app(get_settings())) as client:
        hidden = client.get("/users/1/recommendations", params={"n": 1}).json()["items"][0]
        assert client.patch(f"/items/{hidden['item_id']}", json={"hidden": True}).status_code == 200
        path = tmp_path / "recs.parquet"
        result = runner.invoke(app, ["recommend", "--all", "--n", "10", "--out", str(path)])
        assert result.exit_code == 0, result.output
        assert "wrote 9,430 recommendations for 943 users" in result.output
        exported = pd.read_parquet(path)
        assert list(exported.columns) == ["user_id", "rank", "item_id", "score"]
        assert hidden["item_id"] not in set(exported["item_id"])
        for user in ("1", "13", "405", "655", "943"):
            answer = client.get(f"/users/{user}/recommendations", params={"n": 10}).json()
            mine = exported[exported["user_id"] == user].sort_values("rank")
            assert mine["item_id"].tolist() == [item["item_id"] for item in answer["items"]]
    csv = runner.invoke(app, ["recommend", "--all", "--n", "3", "--out", str(tmp_path / "r.csv")])
    assert csv.exit_code == 0, csv.output
    assert len(pd.read_csv(tmp_path / "r.csv")) == 943 * 3
    assert runner.invoke(app, ["recommend", "--all", "--out", "x.json"]).exit_code == 1
    assert runner.invoke(app, ["recommend"]).exit_code == 1
