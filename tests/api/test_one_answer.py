"""The library, the CLI and the service give the same answer for the same model and user."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from typer.testing import CliRunner

from api.main import create_app
from recsys.cli import app
from recsys.data.ids import UnknownIdError
from recsys.db.ingest import ingest
from recsys.db.sources import from_frame
from recsys.jobs.model_versions import active_version
from recsys.jobs.training_job import TrainConfig, train_and_register
from recsys.serving.answers import Page, answer_for_user
from recsys.serving.loading import load_active, load_version
from recsys.settings import Settings
from tests.api.conftest import catalog
from tests.factories import taste_groups_with_unrated, two_taste_groups


def test_cli_library_and_api_return_the_same_top_ten_and_nothing_rated(
    engine: Engine, settings: Settings, cli_env: str, tmp_path: Path
) -> None:
    train, held_out = taste_groups_with_unrated()
    everything = pd.concat([train, held_out], ignore_index=True)
    ingest(
        engine,
        from_frame("ratings", everything, 500),
        items_source=from_frame("items", catalog(), 50),
    )
    # A random split: some of each user's ratings are in validation only, and the
    # served model must still never offer them.
    for objective in ("rating", "ranking"):
        config = TrainConfig(
            objective=objective, epochs=5, batch_size=64, n_factors=8, split="random",
            valid_pct=0.3, device="cpu",
        )  # fmt: skip
        train_and_register(engine, config, tmp_path / "artifacts", progress=False)
    version = active_version(engine, "ranking")
    library = load_version(engine, version).recommender
    rated = everything.groupby("user_id")["item_id"].apply(set)

    with TestClient(create_app(settings)) as client:
        for user in ("u0", "u7", "u12"):
            ours = list(library.recommend(user, n=10).item_ids)
            answer = client.get(f"/users/{user}/recommendations", params={"n": 10}).json()
            printed = CliRunner().invoke(app, ["recommend", user, "-n", "10"])
            assert printed.exit_code == 0, printed.output
            from_cli = re.findall(r"^\s*[-\d.]+\s+(i\d+)\s", printed.output, re.MULTILINE)

            assert answer["model_version"] == version.id
            assert [item["item_id"] for item in answer["items"]] == ours
            assert from_cli == ours
            assert ours  # every user has unrated items left
            assert not set(ours) & rated[user]


HYBRID = TrainConfig(
    model="hybrid", epochs=20, lr=1e-2, wd=0.01, batch_size=64, valid_pct=0.1, device="cpu"
)
HEADING = re.compile(r"^top \d+ for user \S+ \(model version (\d+)(?:, (\w+))?\):", re.MULTILINE)
ROW = re.compile(r"^\s*[-\d.]+\s+(i\d+)\s", re.MULTILINE)
NEIGHBOUR = re.compile(r"^\s*[-\d.]+\s+\d+\s+(i\d+)\s", re.MULTILINE)  # score, ratings, id


def test_every_kind_of_user_gets_one_answer_from_the_cli_the_library_and_the_api(
    engine: Engine, settings: Settings, cli_env: str, tmp_path: Path
) -> None:
    """A known user, one who rated only after training (fold-in), one with only a profile
    (the metadata model is active), and a stranger with and without the popular
    fallback: the same items, the same how, the same version everywhere."""
    train, _ = two_taste_groups()
    profiles = pd.DataFrame(
        {"user_id": [f"u{u}" for u in range(40)], "age": 30, "gender": "F", "occupation": "x"}
    )
    ingest(
        engine,
        from_frame("ratings", train, 500),
        users_source=from_frame("users", profiles, 50),
        items_source=from_frame("items", catalog(), 50),
    )
    version = train_and_register(engine, HYBRID, tmp_path / "artifacts", progress=False).version_id
    late = pd.DataFrame({"user_id": "late", "item_id": ["i0", "i1", "i2"], "rating": 5.0})
    newbie = pd.DataFrame({"user_id": ["newbie"], "age": [22], "gender": ["F"]})
    ingest(engine, from_frame("ratings", late, 10), users_source=from_frame("users", newbie, 10))
    roles = load_active(engine)
    cases = {
        ("u0", "none"): "known",
        ("late", "none"): "fold_in",
        ("newbie", "none"): "metadata",
        ("stranger", "popular"): "popular",
    }
    with TestClient(create_app(settings)) as client:
        for (user, fallback), how in cases.items():
            library = answer_for_user(roles, engine, user, Page(5), fallback=fallback)  # type: ignore[arg-type]
            top = library.top.item_ids if library.top is not None else library.popular["item_id"]  # type: ignore[index]
            api = client.get(
                f"/users/{user}/recommendations", params={"n": 5, "fallback": fallback}
            ).json()
            printed = CliRunner().invoke(
                app, ["recommend", user, "-n", "5", "--fallback", fallback]
            )
            assert printed.exit_code == 0, printed.output

            assert library.how == how
            assert library.served.version.id == version
            assert list(top) == [item["item_id"] for item in api["items"]]
            assert list(top) == ROW.findall(printed.output)
            assert api["fallback"] == (None if how == "known" else how)
            assert api["model_version"] == version
            assert HEADING.search(printed.output).groups() == (  # type: ignore[union-attr]
                str(version),
                None if how == "known" else how,
            )
        with pytest.raises(UnknownIdError, match="stranger"):
            answer_for_user(roles, engine, "stranger", Page(5))
        refused = client.get("/users/stranger/recommendations")
        printed = CliRunner().invoke(app, ["recommend", "stranger"])
    assert refused.status_code == 404
    assert refused.json()["error"]["code"] == "unknown_user"
    assert printed.exit_code == 1
    assert "unknown user id 'stranger'" in printed.output


def test_exclude_seen_false_is_honoured_for_a_folded_in_user(
    engine: Engine, settings: Settings, tmp_path: Path
) -> None:
    train, _ = two_taste_groups()
    ingest(engine, from_frame("ratings", train, 500))
    config = TrainConfig(epochs=3, batch_size=64, n_factors=8, device="cpu")
    train_and_register(engine, config, tmp_path / "artifacts", progress=False)
    late = pd.DataFrame({"user_id": "late", "item_id": ["i0", "i1", "i2"], "rating": 5.0})
    ingest(engine, from_frame("ratings", late, 10))
    with TestClient(create_app(settings)) as client:
        url = "/users/late/recommendations"
        excluded = client.get(url, params={"n": 20}).json()
        included = client.get(url, params={"n": 20, "exclude_seen": False}).json()
    assert excluded["fallback"] == included["fallback"] == "fold_in"
    assert {"i0", "i1", "i2"}.isdisjoint(item["item_id"] for item in excluded["items"])
    assert {"i0", "i1", "i2"} <= {item["item_id"] for item in included["items"]}


@pytest.mark.parametrize("objective", ["rating", "ranking"])
def test_with_one_model_active_every_surface_of_neighbours_answers_alike(
    engine: Engine, settings: Settings, cli_env: str, tmp_path: Path, objective: str
) -> None:
    """Similar items and explanations from the CLI and the API, and the explorer, with only
    a rating or only a ranking model active: all answer, from the same version."""
    train, _ = two_taste_groups()
    ingest(
        engine, from_frame("ratings", train, 500), items_source=from_frame("items", catalog(), 50)
    )
    config = TrainConfig(
        objective=objective, model="dot", epochs=3, batch_size=64, n_factors=8, device="cpu"
    )
    version = train_and_register(engine, config, tmp_path / "artifacts", progress=False).version_id
    with TestClient(create_app(settings)) as client:
        similar = client.get("/items/i0/similar", params={"n": 3})
        explorer = client.get("/explorer/items")
    cli_similar = CliRunner().invoke(app, ["similar", "i0", "-n", "3"])
    cli_explain = CliRunner().invoke(app, ["explain", "u0", "i1"])
    assert similar.status_code == 200, similar.text
    assert explorer.status_code == 200, explorer.text
    assert similar.json()["model_version"] == explorer.json()["model_version"] == version
    assert cli_similar.exit_code == 0, cli_similar.output
    assert cli_explain.exit_code == 0, cli_explain.output
    neighbours = [item["item_id"] for item in similar.json()["items"]]
    assert NEIGHBOUR.findall(cli_similar.output) == neighbours
    assert ("predicted" in cli_explain.output) == (objective == "rating")
