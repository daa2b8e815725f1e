"""Who may do what: every write, admin operation and read of personal or operational
data needs the key when the server has one; recommendations and item reads stay open."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from recsys.cli import app as cli
from recsys.cli.serve_command import is_loopback

# POSTs that only compute an answer from their body and store nothing.
READS_BY_POST = {
    ("post", "/predictions"),
    ("post", "/users/{user_id}/recommendations"),
    ("post", "/tabular/predict"),
    ("post", "/vision/predict"),
}
# GETs of personal data (a user's age, gender, occupation) and of the model registry.
KEYED_READS = {
    ("get", "/users/{user_id}"),
    ("get", "/models"),
    ("get", "/models/active"),
    ("get", "/metrics"),
    ("get", "/users/{user_id}/similar"),
}


def operations(client: TestClient) -> dict[tuple[str, str], dict]:
    spec = client.app.openapi()  # type: ignore[attr-defined]
    return {
        (method, path): operation
        for path, methods in spec["paths"].items()
        for method, operation in methods.items()
    }


def url(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "1", path)


def test_every_write_admin_and_personal_read_refuses_a_missing_or_wrong_key(
    keyed_client: TestClient,
) -> None:
    every = operations(keyed_client)
    assert set(every) >= READS_BY_POST | KEYED_READS  # the lists name real operations
    guarded = {
        key for key in every if (key[0] != "get" and key not in READS_BY_POST) or key in KEYED_READS
    }
    assert {("post", "/ratings"), ("put", "/users/{user_id}"), ("get", "/metrics")} <= guarded
    for method, path in sorted(guarded):
        for headers, status, code in (
            ({}, 401, "missing_api_key"),
            ({"X-API-Key": ""}, 401, "missing_api_key"),
            ({"X-API-Key": "guess"}, 403, "wrong_api_key"),
        ):
            response = keyed_client.request(method, url(path), headers=headers, json={})
            assert response.status_code == status, (method, path, response.text)
            assert response.json()["error"]["code"] == code
        # ... and the schema says so, for /docs' "Authorize" and generated clients.
        assert every[(method, path)]["security"] == [{"APIKeyHeader": []}], (method, path)
    for key in set(every) - guarded:
        assert "security" not in every[key], key


def test_recommendations_and_item_reads_stay_open(keyed_client: TestClient) -> None:
    for path in (
        "/users/u0/recommendations",
        "/items/i1/similar",
        "/popular",
        "/explorer/items",
        "/health",
        "/ready",
    ):
        assert keyed_client.get(path).status_code == 200, path
    keyed = {"X-API-Key": "s3cret"}
    assert keyed_client.get("/users/u0", headers=keyed).status_code in (200, 404)
    assert keyed_client.get("/models", headers=keyed).status_code == 200


def test_the_openapi_document_declares_the_key_scheme(keyed_client: TestClient) -> None:
    schemes = keyed_client.get("/openapi.json").json()["components"]["securitySchemes"]
    assert schemes["APIKeyHeader"] == {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": schemes["APIKeyHeader"]["description"],
    }


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.7", "recsys.example.com"])
def test_serving_beyond_loopback_without_a_key_is_refused(
    host: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from recsys.settings import get_settings

    monkeypatch.delenv("RECSYS_API_KEY", raising=False)
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(cli, ["serve", "--host", host])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 1
    assert f"refusing to serve on {host} without RECSYS_API_KEY" in result.output
    assert "--insecure" in result.output


def test_loopback_hosts_are_recognised() -> None:
    assert all(is_loopback(h) for h in ("127.0.0.1", "127.3.2.1", "::1", "localhost"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "::", "10.0.0.1", "example.com"))
