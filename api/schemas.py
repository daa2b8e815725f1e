"""Request and response bodies (kept apart from the database tables)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

from fastapi import Path, Query
from pydantic import AfterValidator, BaseModel, BeforeValidator, Field

from recsys.db.validate import (
    AGE_RANGE,
    MAX_GENRE_LENGTH,
    MAX_GENRES,
    MAX_ID_LENGTH,
    MAX_TIMESTAMP,
    MAX_TITLE_LENGTH,
    TEXT_LIMITS,
    check_genre,
    check_id,
    check_path_id,
)

MAX_PAIRS = 1_000
MAX_FEEDBACK = 10_000

# The ingestion's id rule: trimmed, 1-255 characters, no control characters.
ExternalId = Annotated[str, Field(min_length=1, max_length=MAX_ID_LENGTH), AfterValidator(check_id)]
# The same rule for ids in a path or a query: a NUL once reached PostgreSQL, which
# refused it as a database error (503) where it is bad input (422).
PathId = Annotated[str, Path(max_length=MAX_ID_LENGTH), AfterValidator(check_path_id)]
QueryId = Annotated[str, Query(max_length=MAX_ID_LENGTH), AfterValidator(check_path_id)]
Genre = Annotated[
    str, Field(min_length=1, max_length=MAX_GENRE_LENGTH), AfterValidator(check_genre)
]


def _json_number(value: object) -> object:
    if isinstance(value, bool):
        raise ValueError("a boolean is not a number")
    if isinstance(value, str):
        raise ValueError("a number is written without quotes")
    return value


# Whole JSON numbers, also written as 3.0 (as in files); never true/false or "3", which
# pydantic's lax mode would take while the schema says number.
WholeNumber = Annotated[int, BeforeValidator(_json_number)]


class ScoredItem(BaseModel):
    item_id: str
    title: str | None
    score: float


class RecommendedItem(ScoredItem):
    genres: list[str]
    because_you_liked: str | None = Field(
        description="Title of the user's liked item most similar to this one."
    )


class Recommendations(BaseModel):
    user_id: str
    model_version: int | None
    fallback: str | None = Field(
        description="For a user unknown to the model: 'fold_in' (their vector was fitted to "
        "their ratings, or to the session's items), 'metadata' (a hybrid model scored their "
        "profile) or 'popular'."
    )
    items: list[RecommendedItem]


class SessionRequest(BaseModel):
    items: list[ExternalId] = Field(
        min_length=1, max_length=500, description="Items the session looked at or chose."
    )
    n: WholeNumber = Field(default=10, ge=1, le=500)
    genre: str | None = Field(default=None, max_length=64)


class SimilarItems(BaseModel):
    item_id: str
    title: str | None
    model_version: int
    items: list[ScoredItem]


class PopularItem(BaseModel):
    item_id: str
    title: str | None
    genres: list[str]
    n_ratings: int
    mean_rating: float | None


class Pair(BaseModel):
    user_id: ExternalId
    item_id: ExternalId


class PredictionRequest(BaseModel):
    pairs: list[Pair] = Field(min_length=1, max_length=MAX_PAIRS)
    unknown: Literal["baseline", "error"] = Field(
        default="baseline",
        description="A pair with a user or item the model never saw: answer the global mean "
        "plus the known side's offset, flagged `baseline` (default), or refuse the request "
        "with 404 (error).",
    )


class Prediction(Pair):
    rating: float
    baseline: bool = Field(
        default=False, description="True: the model never saw this user or item (see unknown)."
    )


class Predictions(BaseModel):
    model_version: int
    predictions: list[Prediction]


class RatingIn(BaseModel):
    user_id: ExternalId
    item_id: ExternalId
    rating: float = Field(allow_inf_nan=False, strict=True)
    timestamp: WholeNumber | None = Field(
        default=None, ge=0, le=MAX_TIMESTAMP, description="Unix seconds; default now."
    )


class FeedbackRequest(BaseModel):
    ratings: list[RatingIn] = Field(min_length=1, max_length=MAX_FEEDBACK)


class FeedbackResult(BaseModel):
    received: int
    inserted: int
    updated: int
    users_created: int
    items_created: int


class ExplorerItem(BaseModel):
    item_id: str
    title: str | None
    genres: list[str]
    n_ratings: int
    bias: float | None
    pc1: float
    pc2: float
    pc3: float | None


class ExplorerData(BaseModel):
    model_version: int
    explained_variance: list[float]
    items: list[ExplorerItem]


def _utc(moment: datetime) -> datetime:
    """Times the database stores without a zone are UTC (SQLite's CURRENT_TIMESTAMP)."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


class ModelVersionOut(BaseModel):
    id: int
    kind: str
    objective: str
    created_at: Annotated[datetime, AfterValidator(_utc)] = Field(
        description="When the run started, with its time zone (UTC)."
    )
    status: str
    is_active: bool
    metrics: dict[str, Any]
    hyperparameters: dict[str, Any]
    error: str | None
    deleted_since_training: int = Field(
        0,
        description="Users erased and items deleted after this version's training data "
        "was read: its weights still hold what it learned from them (it never answers "
        "with them). `recsys models forget` trains anew without them.",
    )


MAX_TABULAR_ROWS = 10_000


class TabularRequest(BaseModel):
    rows: list[dict[str, Any]] = Field(
        min_length=1,
        max_length=MAX_TABULAR_ROWS,
        description="Raw rows, column name -> value, as in the training file.",
    )


class TabularPrediction(BaseModel):
    prediction: str | float
    probabilities: dict[str, float] | None = Field(
        description="Class -> probability (classification only)."
    )


class TabularPredictions(BaseModel):
    target: str
    predictions: list[TabularPrediction]


class TabularSchema(BaseModel):
    target: str
    categorical: list[str]
    continuous: list[str]
    classes: list[str]


class ScoredUser(BaseModel):
    user_id: str
    score: float = Field(description="Cosine similarity of the two users' vectors.")


class SimilarUsers(BaseModel):
    user_id: str
    model_version: int
    users: list[ScoredUser]


class ItemIn(BaseModel):
    """Checked by the ingestion's rules (recsys.db.validate) as an items file would be."""

    title: str | None = Field(default=None, min_length=1, max_length=MAX_TITLE_LENGTH)
    genres: list[Genre] | None = Field(
        default=None, max_length=MAX_GENRES, description="Replaces the stored genres when given."
    )
    release_date: date | None = None


class ItemOut(BaseModel):
    item_id: str
    title: str | None
    genres: list[str]
    release_date: date | None
    hidden: bool
    created: bool = Field(description="True when this request created the item.")


class ItemVisibility(BaseModel):
    hidden: bool = Field(
        strict=True,  # true or false, not "yes", 1 or "on"
        description="True: never recommended, offered as similar, listed as popular or "
        "drawn on the explorer, by every worker within a second; the item and its ratings "
        "stay.",
    )


class ItemVisibilityOut(ItemVisibility):
    item_id: str


class RatingDeleted(BaseModel):
    """A rating taken back: every worker stops counting it as seen within a poll."""

    user_id: str
    item_id: str
    deleted: Literal[True] = True


class ItemDeleted(BaseModel):
    """An item deleted with its ratings: no worker answers it within a poll."""

    item_id: str
    ratings_deleted: int


class UserErased(BaseModel):
    """A user erased (ratings and profile): every worker answers them as unknown within a
    poll; models trained before keep what they learned until the next training run."""

    user_id: str
    ratings_deleted: int


class UserProfile(BaseModel):
    age: WholeNumber | None = Field(default=None, ge=AGE_RANGE[0], le=AGE_RANGE[1])
    gender: str | None = Field(default=None, min_length=1, max_length=TEXT_LIMITS["gender"])
    occupation: str | None = Field(default=None, min_length=1, max_length=TEXT_LIMITS["occupation"])


class UserProfileOut(UserProfile):
    user_id: str
    created: bool = Field(description="True when this request created the user.")


class VisionPrediction(BaseModel):
    prediction: str
    probability: float
    classes: list[str] = Field(description="The model's classes, in its saved order.")
    probabilities: list[float] = Field(description="One per class, in that order.")
