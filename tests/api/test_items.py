"""Similar items, predictions, the explorer and model versions through the real app."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from api.schemas import MAX_PAIRS


def test_similar_items_are_of_the_same_kind(client: TestClient) -> None:
    body = client.get("/items/i2/similar", params={"n": 5}).json()
    assert body["title"] == "Comedy number 2"
    assert len(body["items"]) == 5
    assert "i2" not in {item["item_id"] for item in body["items"]}
    assert all(item["title"].startswith("Comedy") for item in body["items"])


def test_similar_items_of_unknown_or_unrated_items_are_404(client: TestClient) -> None:
    unknown = client.get("/items/nope/similar")
    assert unknown.status_code == 404
    assert unknown.json()["error"]["message"] == "unknown item id 'nope'"
    unrated = client.get("/items/i20/similar")
    assert unrated.status_code == 404
    assert "has no ratings the model was trained on" in unrated.json()["error"]["message"]


def test_predictions_come_back_in_order(client: TestClient) -> None:
    pairs = [{"user_id": "u0", "item_id": "i1"}, {"user_id": "u0", "item_id": "i15"}]
    body = client.post("/predictions", json={"pairs": pairs}).json()
    ratings = [p["rating"] for p in body["predictions"]]
    assert [p["item_id"] for p in body["predictions"]] == ["i1", "i15"]
    assert ratings[0] > 4 > 2 > ratings[1]


def test_prediction_requests_are_bounded_and_name_unknown_ids(client: TestClient) -> None:
    too_many = [{"user_id": "u0", "item_id": "i1"}] * (MAX_PAIRS + 1)
    assert client.post("/predictions", json={"pairs": too_many}).status_code == 422
    assert client.post("/predictions", json={"pairs": []}).status_code == 422
    unknown = client.post(
        "/predictions",
        json={"pairs": [{"user_id": "u0", "item_id": "zz"}], "unknown": "error"},
    )
    assert unknown.status_code == 404
    assert unknown.json()["error"] == {"code": "unknown_item", "message": "unknown item id 'zz'"}


def test_pairs_the_model_cannot_score_get_the_baseline_flagged(client: TestClient) -> None:
    pairs = [("u0", "zz"), ("u0", "i1"), ("nobody", "i1"), ("nobody", "zz"), ("u0", "i15")]
    body = client.post(
        "/predictions", json={"pairs": [{"user_id": u, "item_id": i} for u, i in pairs]}
    ).json()["predictions"]
    assert [(p["user_id"], p["item_id"]) for p in body] == pairs
    assert [p["baseline"] for p in body] == [True, False, True, True, False]
    # Neither side known: the mean of the ratings the served model was fitted on.
    assert body[3]["rating"] == pytest.approx((9 * 5 + 10 * 1) / 19, abs=1e-4)
    assert body[1]["rating"] > 4 > 2 > body[4]["rating"]  # the model, as before


def test_explorer_data_and_page_and_static_assets_are_served(client: TestClient) -> None:
    data = client.get("/explorer/items", params={"min_ratings": 0, "limit": 5}).json()
    assert len(data["explained_variance"]) == 3
    assert len(data["items"]) == 5
    assert {"pc1", "pc2", "pc3", "bias", "title", "genres", "n_ratings"} <= set(data["items"][0])
    page = client.get("/explorer")
    assert page.status_code == 200
    assert '<script src="/static/plotly-basic-3.1.0.min.js">' in page.text
    asset = client.get("/static/plotly-basic-3.1.0.min.js")
    assert asset.status_code == 200
    assert "plotly.js (basic - minified) v3.1.0" in asset.text[:200]


def test_models_list_the_versions_and_the_active_one(client: TestClient) -> None:
    versions = client.get("/models").json()
    assert len(versions) == 1
    assert versions[0]["status"] == "ready"
    assert versions[0]["is_active"] is True
    active = client.get("/models/active").json()
    assert active["id"] == versions[0]["id"]
    assert set(active["metrics"]) >= {"rmse", "mae"}
    assert client.get("/ready").json()["model_version"] == active["id"]


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/items/film\u200bx", {"title": "A Film"}),
        ("/items/\u0661\u0662", {"title": "A Film"}),
        ("/items/new", {"title": "A Film\u202e"}),
        ("/items/new", {"title": "x" * 1_001}),
        ("/items/new", {"genres": ["Drama|Comedy"]}),
        ("/items/new", {"genres": ["\ufeffDrama"]}),
    ],
)
def test_lookalike_or_oversize_item_fields_are_refused_by_the_api(
    keyed_client: TestClient, path: str, body: dict
) -> None:
    response = keyed_client.put(path, json=body, headers={"X-API-Key": "s3cret"})
    assert response.status_code == 422, response.text
