"""Big request bodies are parsed and validated off the event loop, with the same errors."""

from __future__ import annotations

import asyncio

import pytest
from fastapi.testclient import TestClient

from api.json_body import OFF_LOOP_BYTES
from api.schemas import FeedbackRequest


def ratings(n: int, id_length: int, rating: object = 4) -> dict:
    pad = "x" * id_length
    return {
        "ratings": [
            {"user_id": f"u{k}{pad}", "item_id": f"i{k % 20}", "rating": rating} for k in range(n)
        ]
    }


def test_a_big_body_is_validated_off_the_event_loop(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    where: list[str] = []
    validate = FeedbackRequest.model_validate_json

    def spy(data: bytes, **kwargs: object) -> FeedbackRequest:
        try:
            asyncio.get_running_loop()
            where.append("event loop")
        except RuntimeError:
            where.append("worker thread")
        return validate(data, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(FeedbackRequest, "model_validate_json", spy)
    small, big = ratings(2, 1), ratings(400, 200)
    assert len(str(big)) > OFF_LOOP_BYTES
    assert client.post("/ratings", json=small).status_code == 200
    assert client.post("/ratings", json=big).status_code == 200
    assert where == ["event loop", "worker thread"]


@pytest.mark.parametrize("n", [2, 400])
def test_a_bad_body_is_the_same_422_small_or_big(client: TestClient, n: int) -> None:
    response = client.post("/ratings", json=ratings(n, 200, rating="4"))
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_request"
    assert response.json()["error"]["message"].startswith("body.ratings.0.rating:")
    broken = client.post(
        "/ratings", content=b'{"ratings": [', headers={"Content-Type": "application/json"}
    )
    assert broken.status_code == 422
