"""One JSON error shape for every failure: ``{"error": {"code", "message"}}``.

Database trouble is a 503 (``database_busy`` with ``Retry-After`` when SQLite's
other writer held the lock past the wait; ``database_file_changed`` when the SQLite
file was deleted or replaced under the service; ``database_unavailable`` otherwise), and
anything unforeseen a 500 in the same shape: no failure answers in plain text.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException

from recsys.data.catalog import UnknownGenreError
from recsys.data.ids import UnknownIdError
from recsys.db.engine import WRITER_WAIT_SECONDS, DatabaseFileChanged, is_busy
from recsys.jobs.model_versions import ActivationError, CannotActivateError, NoSuchVersionError
from recsys.models.scorer import CapabilityError
from recsys.serving.answers import UnknownSessionItemsError
from recsys.serving.roles import (
    ModelUnavailableError,
    NoModelError,
    NoRatingModelError,
    NoUserVectorsError,
)

logger = logging.getLogger("recsys.api")


class ServiceError(Exception):
    """An error the service answers with a status code and a stable code string."""

    def __init__(self, status_code: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.code = code
        self.message = message


def error_response(
    status_code: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        status_code=status_code,
        content={"error": {"code": code, "message": message}},
        headers=headers,
    )


# The library's errors, each answered with one status and code wherever it is raised (the
# most specific class registered answers; ``{kind}``: the kind of id). No route catches them.
LIBRARY_ERRORS: list[tuple[type[Exception], int, str]] = [
    (UnknownIdError, 404, "unknown_{kind}"),
    (NoModelError, 503, "no_model"),
    (ModelUnavailableError, 503, "model_unavailable"),
    (NoRatingModelError, 409, "no_rating_model"),
    (NoUserVectorsError, 409, "no_user_vectors"),
    (CapabilityError, 409, "not_supported"),
    (UnknownGenreError, 422, "unknown_genre"),
    (UnknownSessionItemsError, 422, "unknown_items"),
    (NoSuchVersionError, 404, "unknown_version"),
    (CannotActivateError, 409, "cannot_activate"),
]


def install_error_handlers(app: FastAPI) -> None:
    """Route framework, service and library errors through :func:`error_response`."""

    def library_error(status_code: int, code: str) -> Callable[..., Awaitable[JSONResponse]]:
        async def handle(_request: Request, error: Exception) -> JSONResponse:
            message = str(error)
            if isinstance(error, ActivationError):
                message += "; the active version is unchanged"
            return error_response(
                status_code, code.format(kind=getattr(error, "kind", "")), message
            )

        return handle

    for error_class, status_code, code in LIBRARY_ERRORS:
        app.add_exception_handler(error_class, library_error(status_code, code))

    @app.exception_handler(ServiceError)
    async def _service_error(_request: Request, error: ServiceError) -> JSONResponse:
        return error_response(error.status_code, error.code, error.message)

    @app.exception_handler(HTTPException)
    async def _http_error(_request: Request, error: HTTPException) -> JSONResponse:
        return error_response(error.status_code, "http_error", str(error.detail))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, error: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors()
        )
        return error_response(422, "invalid_request", problems)

    @app.exception_handler(SQLAlchemyError)
    async def _database_error(_request: Request, error: SQLAlchemyError) -> JSONResponse:
        if isinstance(error, DatabaseFileChanged):
            logger.error("%s", error)
            return error_response(503, "database_file_changed", str(error))
        if is_busy(error):
            return error_response(
                503,
                "database_busy",
                f"another write held the database for over {WRITER_WAIT_SECONDS:.0f} s; "
                "nothing was stored: try again",
                headers={"Retry-After": "1"},
            )
        logger.error("database error: %s", error)
        message = f"the database failed: {type(error).__name__}: {getattr(error, 'orig', error)}"
        return error_response(503, "database_unavailable", message)

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, error: Exception) -> JSONResponse:
        logger.exception("unhandled error")
        return error_response(500, "internal_error", f"{type(error).__name__}: {error}")
