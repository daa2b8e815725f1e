"""The library, the CLI and the service give the same answer for the same model and user."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from typer.testing import CliRunner

from api.main import create_app
from recsys.cli import app
from recsys.db.ingest import ingest
from recsys.db.sources import from_frame
from recsys.jobs.model_versions import active_version, load_version
from recsys.jobs.training_job import TrainConfig, train_and_register
from recsys.settings import Settings
from tests.api.conftest import catalog
from tests.factories import taste_groups_with_unrated


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
    library = load_version(engine, version)
    rated = everything.groupby("user_id")["item_id"].apply(set)

    with TestClient(create_app(settings)) as client:
        for user in ("u0", "u7", "u12"):
            ours = list(library.recommend(user, n=10)["item_id"])
            answer = client.get(f"/users/{user}/recommendations", params={"n": 10}).json()
            printed = CliRunner().invoke(app, ["recommend", user, "-n", "10"])
            assert printed.exit_code == 0, printed.output
            from_cli = re.findall(r"^\s*[-\d.]+\s+(i\d+)\s", printed.output, re.MULTILINE)

            assert answer["model_version"] == version.id
            assert [item["item_id"] for item in answer["items"]] == ours
            assert from_cli == ours
            assert ours  # every user has unrated items left
            assert not set(ours) & rated[user]
