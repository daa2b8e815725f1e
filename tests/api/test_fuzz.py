"""Property-based fuzzing of the whole HTTP surface from the app's own OpenAPI schema.

Every generated request must get an answer below 500, every error must be in
the ``{"error": {"code", "message"}}`` shape, and a write that fails must leave
the ratings table as it was.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from sqlalchemy import Engine, func, select

from api.main import create_app
from recsys.db.tables import ratings
from recsys.settings import Settings
from tests.api.test_tabular import train_tabular
from tests.api.test_vision_endpoint import train_vision


@pytest.fixture
def database_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'recsys.db'}"


@pytest.fixture(scope="module")
def keyed_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """The app with a key, on a database holding a small model (one per module: the
    header property runs many examples against it)."""
    from recsys.db.engine import make_engine
    from recsys.db.migrate import upgrade
    from tests.servers import ranking_version

    folder = tmp_path_factory.mktemp("headers")
    url = f"sqlite:///{folder / 'recsys.db'}"
    upgrade(url)
    ranking_version(make_engine(url), folder / "artifacts")
    settings = Settings(
        database_url=url, artifact_dir=folder / "artifacts", api_key="s3cret", model_poll_seconds=0
    )
    with TestClient(create_app(settings)) as client:
        yield client


def count_ratings(engine: Engine) -> int:
    with engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(ratings)).scalar_one()


def test_no_request_breaks_the_service(
    trained_engine: Engine, settings: Settings, tmp_path: Path
) -> None:
    train_tabular(settings.tabular_model_path)
    train_vision(tmp_path / "images", settings.vision_model_path)
    app = create_app(settings)
    with TestClient(app):  # runs the lifespan: model loaded, engine ready
        schema = schemathesis.openapi.from_asgi("/openapi.json", app)
        operations = [result.ok() for result in schema.get_all_operations()]
        assert len(operations) >= 9
        for operation in operations:  # a bounded number of examples for every operation

            @hyp_settings(
                max_examples=25,
                deadline=None,
                derandomize=True,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            @given(case=operation.as_strategy())
            def check(case: schemathesis.Case) -> None:
                before = count_ratings(trained_engine)
                response = case.call()
                case.validate_response(response, checks=[not_a_server_error])
                if response.status_code >= 400:
                    body = response.json()
                    assert set(body) == {"error"}, body
                    assert set(body["error"]) == {"code", "message"}, body
                    assert count_ratings(trained_engine) == before  # refused writes write nothing

            check()


header_values = st.binary(max_size=300).map(
    lambda raw: bytes(b for b in raw if b not in b"\r\n\x00").strip()
)


@hyp_settings(max_examples=150, deadline=None, derandomize=True, database=None)
@given(
    name=st.sampled_from(
        ["X-API-Key", "Content-Type", "Accept", "Authorization", "Cookie", "Host", "Origin"]
    ),
    value=header_values,
    request=st.sampled_from(
        [
            ("GET", "/users/u0/recommendations"),
            ("POST", "/ratings"),
            ("PUT", "/users/u9"),
            ("GET", "/metrics"),
            ("GET", "/ready"),
            ("POST", "/models/1/activate"),
        ]
    ),
)
def test_no_header_value_breaks_the_service(
    keyed_app: TestClient, name: str, value: bytes, request: tuple[str, str]
) -> None:
    """Header values from an anonymous client, any bytes a header line can carry: an
    answer below 500, in the one error shape."""
    method, path = request
    body = {"ratings": [{"user_id": "u0", "item_id": "i0", "rating": 4}]}
    response = keyed_app.request(
        method, path, json=body if method != "GET" else None, headers={name: value}
    )
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert set(response.json()) == {"error"}
