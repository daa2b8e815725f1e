"""Every failure answers in the one JSON error shape with the right status."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.main import create_app
from recsys.settings import Settings


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["error"]["code"] == code
    return response.json()["error"]


def test_a_read_only_database_is_a_503_and_ready_says_so(
    trained_engine: Engine, tmp_path: Path
) -> None:
    path = trained_engine.url.database
    if trained_engine.dialect.name != "sqlite":
        pytest.skip("a read-only PostgreSQL server needs a standby")
    read_only = Settings(
        database_url=f"sqlite:///file:{path}?mode=ro&uri=true",
        artifact_dir=tmp_path / "artifacts",
        model_poll_seconds=0,
    )
    with TestClient(create_app(read_only)) as client:
        body = {"ratings": [{"user_id": "u1", "item_id": "i1", "rating": 3}]}
        error = assert_error(client.post("/ratings", json=body), 503, "database_unavailable")
        assert "readonly" in error["message"]
        assert_error(client.put("/users/x", json={"age": 30}), 503, "database_unavailable")
        assert (
            "read-only" in assert_error(client.get("/ready"), 503, "database_read_only")["message"]
        )
        assert client.get("/users/u0/recommendations").status_code == 200  # reads still work


def test_numbers_too_large_are_422_not_500(client: TestClient) -> None:
    assert_error(client.post(f"/models/{2**70}/activate"), 422, "invalid_request")
    response = client.post("/ratings", content=b'{"ratings": [{"user_id": "a", "item_id": "b", '
                           b'"rating": 1' + b"0" * 400 + b"}]}",
                           headers={"content-type": "application/json"})  # fmt: skip
    assert response.status_code == 422


def test_a_storage_problem_is_a_503(tmp_path: Path) -> None:
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("")
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'empty.db'}",
        artifact_dir=not_a_folder,
        model_poll_seconds=0,
    )
    with TestClient(create_app(settings)) as client:
        for path in ("/tabular/schema", "/vision/predict"):
            response = (
                client.get(path)
                if path.startswith("/tabular")
                else client.post(path, files={"image": ("x.png", b"x", "image/png")})
            )
            assert_error(response, 503, "artifact_storage_unavailable")


def test_unforeseen_errors_are_json_500s(client: TestClient) -> None:
    def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("a bug")

    client.app.state.service.models["rating"].recommender.recommend_many = broken
    client.app.state.service.models.pop("ranking", None)
    raising = TestClient(client.app, raise_server_exceptions=False)
    error = assert_error(raising.get("/users/u0/recommendations"), 500, "internal_error")
    assert "a bug" in error["message"]


def test_oversize_json_bodies_are_refused_before_parsing(
    trained_engine: Engine, settings: Settings
) -> None:
    capped = settings.model_copy(update={"max_body_bytes": 10_000, "model_poll_seconds": 0})
    pairs = [{"user_id": "u0", "item_id": "i1"}] * 400  # about 14 kB
    with TestClient(create_app(capped)) as client:
        for path in ("/predictions", "/ratings", "/tabular/predict"):
            error = assert_error(client.post(path, json={"pairs": pairs}), 413, "body_too_large")
            assert "10,000 bytes" in error["message"]

        def chunks() -> Iterator[bytes]:  # no Content-Length: read only up to the cap
            yield b'{"pairs": ['
            for _ in range(400):
                yield b'{"user_id": "u0", "item_id": "i1"},'
            yield b'{"user_id": "u0", "item_id": "i1"}]}'

        response = client.post("/predictions", content=chunks())
        assert_error(response, 413, "body_too_large")
        small = client.post("/predictions", json={"pairs": pairs[:10]})
        assert small.status_code == 200


@pytest.mark.parametrize("bad", ["a%00b", "a%0Ab", "%20%20", "x" * 256])
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/users/{id}/recommendations?fallback=popular"),
        ("GET", "/users/u0/recommendations?exclude={id}"),
        ("GET", "/popular?exclude={id}"),
        ("POST", "/users/{id}/recommendations"),
        ("GET", "/users/{id}"),
        ("PUT", "/users/{id}"),
        ("GET", "/users/{id}/similar"),
        ("GET", "/items/{id}/similar"),
        ("PUT", "/items/{id}"),
        ("PATCH", "/items/{id}"),
    ],
)
def test_an_id_in_a_path_or_query_follows_the_id_rule_on_every_database(
    client: TestClient, method: str, path: str, bad: str
) -> None:
    """A NUL in a path id reached PostgreSQL and came back as a 503 database error."""
    body = {"items": ["i0"]} if method == "POST" else {"hidden": True} if method == "PATCH" else {}
    response = client.request(method, path.replace("{id}", bad), json=body)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "invalid_request"


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/ratings", {"ratings": [{"user_id": "u0", "item_id": "i0", "rating": "4"}]}),
        ("POST", "/ratings", {"ratings": [{"user_id": "u0", "item_id": "i0", "rating": True}]}),
        (
            "POST",
            "/ratings",
            {"ratings": [{"user_id": "u0", "item_id": "i0", "rating": 4, "timestamp": "1000"}]},
        ),
        ("POST", "/users/s1/recommendations", {"items": ["i0"], "n": "5"}),
        ("POST", "/users/s1/recommendations", {"items": ["i0"], "n": True}),
        ("POST", "/users/s1/recommendations", {"items": [0]}),
        ("PATCH", "/items/i0", {"hidden": "true"}),
        ("PATCH", "/items/i0", {"hidden": 1}),
        ("PUT", "/users/u0", {"age": "31"}),
        ("PUT", "/users/u0", {"age": 31.5}),
        ("PUT", "/items/i0", {"title": 7}),
        ("POST", "/predictions", {"pairs": [{"user_id": 1, "item_id": "i0"}]}),
    ],
)
def test_json_values_must_have_the_type_the_schema_says(
    client: TestClient, method: str, path: str, body: dict
) -> None:
    response = client.request(method, path, json=body)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "invalid_request"
