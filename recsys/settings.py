"""Service settings, read once from ``RECSYS_*`` environment variables (and ``.env``)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from recsys.db.validate import check_rating_range


class Settings(BaseSettings):
    """Everything the CLI, the training job and the API read from the environment."""

    model_config = SettingsConfigDict(env_prefix="RECSYS_", env_file=".env", extra="ignore")

    database_url: str = Field(
        default="sqlite:///recsys.db",
        description="SQLAlchemy URL; a SQLite file in the working directory by default.",
    )
    artifact_dir: Path = Field(default=Path("artifacts"), description="Where model versions live.")
    tabular_model: Path | None = Field(
        default=None,
        description="The tabular model `recsys tabular` writes and the API serves "
        "[ARTIFACT_DIR/tabular/model.pt].",
    )
    vision_model: Path | None = Field(
        default=None,
        description="The image classifier `recsys vision train` writes and the API serves "
        "[ARTIFACT_DIR/vision/model.pt].",
    )
    vision_max_upload_bytes: int = Field(
        default=5 * 1024 * 1024, gt=0, description="Largest image POST /vision/predict accepts."
    )
    max_body_bytes: int = Field(
        default=8 * 1024 * 1024,
        gt=0,
        description="Largest request body any endpoint reads (413 above it; images have "
        "their own limit).",
    )
    max_head_bytes: int = Field(
        default=64 * 1024,
        gt=0,
        description="Largest request line and headers, together, `recsys serve` reads (431). "
        "A URL is at most 65,535 bytes whatever this says (the HTTP parser's limit).",
    )
    request_head_seconds: float = Field(
        default=30.0,
        gt=0,
        description="How long `recsys serve` waits for a request's line and headers (408).",
    )
    api_key: str | None = Field(
        default=None,
        description="Required on write endpoints when set; empty or blank means not set.",
    )
    device: Literal["auto", "cpu", "cuda"] = Field(
        default="auto", description="auto = CUDA when available, else CPU."
    )
    rating_min: float = Field(default=0.5, description="Smallest rating ingestion accepts.")
    rating_max: float = Field(default=5.0, description="Largest rating ingestion accepts.")
    ingest_chunk_rows: int = Field(default=50_000, gt=0, description="Rows read per chunk.")
    api_torch_threads: int = Field(
        default=1,
        gt=0,
        description="BLAS/OpenMP threads per API worker, for numpy, scipy, torch and faiss "
        "alike (whatever OMP_NUM_THREADS and the like say).",
    )
    model_poll_seconds: float = Field(
        default=5.0, ge=0, description="How often the API checks for a new active model (0: never)."
    )
    ratings_poll_seconds: float = Field(
        default=0.5,
        ge=0,
        description="How often each API worker folds in ratings written elsewhere (0: never).",
    )
    recommend_with: Literal["ranking", "rating"] = Field(
        default="ranking",
        description="Which active model answers recommendations: the ranking model (when one "
        "is active, else the rating model), or always the rating model.",
    )

    @property
    def tabular_model_path(self) -> Path:
        return self.tabular_model or self.artifact_dir / "tabular" / "model.pt"

    @property
    def vision_model_path(self) -> Path:
        return self.vision_model or self.artifact_dir / "vision" / "model.pt"

    @field_validator("api_key")
    @classmethod
    def _blank_key_is_no_key(cls, value: str | None) -> str | None:
        # An empty RECSYS_API_KEY (compose's ${RECSYS_API_KEY:-}) must never become a key
        # that an empty X-API-Key header matches.
        return value if value is not None and value.strip() else None

    @model_validator(mode="after")
    def _check_rating_range(self) -> Settings:
        try:
            check_rating_range(self.rating_min, self.rating_max)
        except ValueError as error:
            raise ValueError(f"RECSYS_RATING_MIN/RECSYS_RATING_MAX: {error}") from None
        return self


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings; tests build their own ``Settings`` and pass it in."""
    return Settings()
