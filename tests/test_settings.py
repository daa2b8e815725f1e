"""Settings come from RECSYS_ variables and refuse nonsense."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from recsys.settings import Settings


def test_defaults_are_the_embedded_database_and_local_artifacts(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("RECSYS_DATABASE_URL", "RECSYS_ARTIFACT_DIR", "RECSYS_API_KEY", "RECSYS_DEVICE"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings()
    assert settings.database_url == "sqlite:///recsys.db"
    assert settings.artifact_dir == Path("artifacts")
    assert (settings.api_key, settings.device, settings.rating_min, settings.rating_max) == (
        None,
        "auto",
        0.5,
        5.0,
    )


def test_environment_and_dotenv_override(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("RECSYS_API_KEY=from-dotenv\nRECSYS_RATING_MAX=10\n")
    monkeypatch.setenv("RECSYS_DEVICE", "cpu")
    settings = Settings()
    assert (settings.api_key, settings.rating_max, settings.device) == ("from-dotenv", 10.0, "cpu")


@pytest.mark.parametrize(
    ("low", "high", "problem"),
    [
        ("5", None, "must be below"),
        ("nan", "nan", "finite"),
        ("nan", None, "finite"),
        (None, "nan", "finite"),
        ("-inf", None, "finite"),
        (None, "inf", "finite"),
    ],
)
def test_a_rating_range_that_is_empty_or_not_finite_is_refused(
    monkeypatch: pytest.MonkeyPatch, low: str | None, high: str | None, problem: str
) -> None:
    for name, value in (("RECSYS_RATING_MIN", low), ("RECSYS_RATING_MAX", high)):
        if value is not None:
            monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError, match=problem):
        Settings()
