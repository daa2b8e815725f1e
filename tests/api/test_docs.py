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
