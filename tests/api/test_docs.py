"""The API's documentation pages are served by the app itself, CDN-free."""

from __future__ import annotations

from fastapi.testclient import TestClient


def test_docs_and_redoc_load_their_assets_from_the_app(client: TestClient) -> None:
    for page, assets in (
        ("/docs", ("/docs-assets/swagger-ui-bundle.js", "/docs-assets/swagger-ui.css")),
        ("/redoc", ("/docs-assets/redoc.standalone.js",)),
    ):
        html = client.get(page)
        assert html.status_code == 200
        assert "cdn." not in html.text
        assert "fonts.googleapis" not in html.text
        for asset in assets:
            assert asset in html.text
            assert client.get(asset).status_code == 200


def test_every_operation_documents_its_error_statuses_in_one_shape(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert "Error" in spec["components"]["schemas"]
    operations = {
        (method, path): operation
        for path, methods in spec["paths"].items()
        for method, operation in methods.items()
    }
    guarded = operations[("post", "/ratings")]["responses"]
    assert {"401", "403", "413", "422", "503"} <= set(guarded)
    assert guarded["401"]["content"]["application/json"]["example"]["error"]["code"] == (
        "missing_api_key"
    )
    assert {"404", "422", "503"} <= set(
        operations[("get", "/items/{item_id}/similar")]["responses"]
    )
    assert "409" in operations[("post", "/predictions")]["responses"]
    assert "401" not in operations[("get", "/popular")]["responses"]


def test_model_version_times_carry_their_time_zone(client: TestClient) -> None:
    created = client.get("/models").json()[0]["created_at"]
    assert created.endswith(("Z", "+00:00")), created
