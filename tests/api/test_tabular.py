"""POST /tabular/predict: the saved schema checks rows; a retrained model is picked up."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from fastapi.testclient import TestClient

from api.main import create_app
from recsys.settings import Settings
from recsys.tabular.tabular_learner import TabularData, tabular_learner
from tests.api.conftest import file_model_settings
from tests.factories import easy_rule_rows


def train_tabular(path: Path, target: str = "y") -> None:
    """A small classifier of :func:`easy_rule_rows` (columns group, x), saved at ``path``."""
    frame = easy_rule_rows().rename(columns={"y": target})
    torch.manual_seed(0)
    learn = tabular_learner(
        TabularData.from_df(frame, target, batch_size=128), layers=(32,), progress=False
    )
    learn.fit_one_cycle(5, 1e-2)
    learn.save(path)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return file_model_settings(tmp_path)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as client:
        yield client


def test_rows_get_predictions_and_probabilities(settings: Settings, client: TestClient) -> None:
    train_tabular(settings.tabular_model_path)
    rows = [{"group": "a", "x": 0.0}, {"group": "b", "x": 2.5}, {"group": "c", "x": -1}]
    # An unseen category and a missing value still answer.
    rows += [{"group": "zzz", "x": -1.0}, {"group": None, "x": None}]
    response = client.post("/tabular/predict", json={"rows": rows})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["target"] == "y"
    predictions = body["predictions"]
    assert [p["prediction"] for p in predictions[:3]] == ["hi", "hi", "lo"]
    for p in predictions:
        assert set(p["probabilities"]) == {"hi", "lo"}
        assert sum(p["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
    schema = client.get("/tabular/schema").json()
    assert schema == {
        "target": "y",
        "categorical": ["group"],
        "continuous": ["x"],
        "classes": ["hi", "lo"],
    }


def test_a_missing_column_is_a_422_naming_it(settings: Settings, client: TestClient) -> None:
    train_tabular(settings.tabular_model_path)
    response = client.post("/tabular/predict", json={"rows": [{"group": "a"}]})
    assert response.status_code == 422
    assert response.json()["error"] == {
        "code": "schema_mismatch",
        "message": "missing column(s): x",
    }
    bad = client.post(
        "/tabular/predict", json={"rows": [{"group": "a", "x": 1}, {"group": "a", "x": "big"}]}
    )
    assert bad.status_code == 422
    assert "column 'x' is continuous, but row 2 holds 'big'" in bad.json()["error"]["message"]
    assert client.post("/tabular/predict", json={"rows": []}).status_code == 422


def test_no_model_is_a_503_then_a_new_file_is_served(
    settings: Settings, client: TestClient
) -> None:
    response = client.post("/tabular/predict", json={"rows": [{"group": "a", "x": 0}]})
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "no_tabular_model"
    assert "recsys tabular train" in response.json()["error"]["message"]

    train_tabular(settings.tabular_model_path, target="first")
    assert client.get("/tabular/schema").json()["target"] == "first"
    train_tabular(settings.tabular_model_path, target="second")  # replaced while serving
    assert client.get("/tabular/schema").json()["target"] == "second"

    settings.tabular_model_path.write_bytes(b"not a model")  # damaged: the old one serves on
    assert client.get("/tabular/schema").json()["target"] == "second"


def test_a_file_that_does_not_load_is_a_503_saying_so(
    settings: Settings, client: TestClient
) -> None:
    settings.tabular_model_path.parent.mkdir(parents=True)
    settings.tabular_model_path.write_bytes(b"not a model")
    response = client.get("/tabular/schema")
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "tabular_model_unloadable"
    assert "recsys tabular train" in response.json()["error"]["message"]
