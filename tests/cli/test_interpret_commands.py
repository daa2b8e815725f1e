"""The interpretation commands on a migrated database with a trained model."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from recsys.cli import app
from recsys.db.engine import make_engine
from recsys.db.ingest import ingest
from recsys.db.migrate import upgrade
from recsys.db.sources import from_frame
from tests.factories import two_taste_groups

runner = CliRunner()


@pytest.fixture
def trained_database(cli_env: str) -> str:
    """Two taste groups, with titles and one item nobody rated; a trained dot model."""
    upgrade(cli_env)
    train, _ = two_taste_groups()
    titles = pd.DataFrame(
        {
            "item_id": [f"i{i}" for i in range(21)],
            "title": [f"{'Comedy' if i < 10 else 'Horror'} number {i}" for i in range(20)]
            + ["Unrated Film"],
        }
    )
    engine = make_engine(cli_env)
    ingest(engine, from_frame("ratings", train, 500), items_source=from_frame("items", titles, 50))
    engine.dispose()
    result = runner.invoke(
        app,
        [
            "train",
            "--epochs",
            "30",
            "--lr",
            "0.03",
            "--wd",
            "0.01",
            "--batch-size",
            "64",
            "--factors",
            "8",
            "--valid-pct",
            "0.1",
        ],
    )
    assert result.exit_code == 0, result.output
    return cli_env


def test_biases_and_pca_print_their_tables_and_plots(trained_database: str, tmp_path: Path) -> None:
    biases = runner.invoke(
        app, ["interpret", "biases", "-n", "3", "--users", "--plot", str(tmp_path / "b.png")]
    )
    assert biases.exit_code == 0, biases.output
    assert "highest item biases" in biases.output
    assert "lowest user biases" in biases.output
    assert (tmp_path / "b.png").stat().st_size > 0

    pca = runner.invoke(
        app,
        [
            "interpret",
            "pca",
            "--min-ratings",
            "0",
            "--components",
            "2",
            "--plot",
            str(tmp_path / "p.png"),
        ],
    )
    assert pca.exit_code == 0, pca.output
    assert "PC2 (" in pca.output
    # The first component separates the two taste groups: each end holds one genre.
    lines = pca.output.splitlines()
    first = lines.index(next(line for line in lines if line.startswith("PC1 (")))
    for end in lines[first + 1 : first + 3]:
        genres = {title.split()[0] for title in end.split(":", 1)[1].strip().split("; ")}
        assert len(genres) == 1, end
    assert (tmp_path / "p.png").stat().st_size > 0


def test_similar_by_title_and_clear_errors(trained_database: str) -> None:
    found = runner.invoke(app, ["similar", "comedy number 3", "-n", "3"])
    assert found.exit_code == 0, found.output
    assert "nearest to i3: Comedy number 3" in found.output
    assert "Comedy number" in found.output.split("\n", 2)[2]

    ambiguous = runner.invoke(app, ["similar", "number 1"])
    assert ambiguous.exit_code == 1
    assert "'number 1' matches 11 items" in ambiguous.output

    unrated = runner.invoke(app, ["similar", "Unrated Film"])
    assert unrated.exit_code == 1
    assert "item 'i20' has no ratings in the model's training data" in unrated.output


def test_explain_names_the_users_liked_items(trained_database: str) -> None:
    result = runner.invoke(app, ["explain", "u0", "i1"])
    assert result.exit_code == 0, result.output
    assert "Comedy number 1 for user u0: predicted" in result.output
    assert "because they liked:" in result.output
    assert "Horror" not in result.output  # u0 disliked every horror film

    unknown = runner.invoke(app, ["explain", "nobody", "i1"])
    assert unknown.exit_code == 1
    assert "unknown user id 'nobody'" in unknown.output


def test_commands_say_when_no_model_was_trained(cli_env: str) -> None:
    upgrade(cli_env)
    result = runner.invoke(app, ["interpret", "biases"])
    assert result.exit_code == 1
    assert "no model is active yet: run `recsys train`" in result.output


def test_ranking_models_train_list_and_roll_back_by_objective(trained_database: str) -> None:
    ease = runner.invoke(app, ["train", "--objective", "ranking", "--model", "ease", "--l2", "10"])
    assert ease.exit_code == 0, ease.output
    assert "ranking model version 2 is now active: no ranking version was active" in ease.output
    assert "ndcg" in ease.output
    dot = runner.invoke(
        app,
        [
            "train",
            "--objective",
            "ranking",
            "--epochs",
            "5",
            "--factors",
            "8",
            "--promote",
            "always",
        ],
    )
    assert dot.exit_code == 0, dot.output

    listed = runner.invoke(app, ["models", "list"]).output.splitlines()
    assert listed[0].split()[:3] == ["*", "3", "ranking"]
    assert listed[1].split()[:3] == ["2", "ranking", "ease"]
    assert listed[2].split()[:3] == ["*", "1", "rating"]
    rolled = runner.invoke(app, ["models", "rollback", "--objective", "ranking"])
    assert "rolled back: ranking model version 2 is active" in rolled.output

    refused = runner.invoke(app, ["train", "--model", "ease"])
    assert refused.exit_code == 1
    assert "ease ranks items and predicts no ratings: use --objective ranking" in refused.output
