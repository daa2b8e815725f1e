"""One JSON error shape for every failure: ``{"error": {"code", "message"}}``.

Database trouble is a 503 (``database_busy`` with ``Retry-After`` when SQLite's
other writer held the lock past the wait; ``database_file_changed`` when the SQLite
file was deleted or replaced under the service; ``database_unavailable`` otherwise), and
anything unforeseen a 500 in the same shape: no failure answers in plain text.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException

from recsys.db.engine import WRITER_WAIT_SECONDS, DatabaseFileChanged, is_busy

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


def install_error_handlers(app: FastAPI) -> None:
    """Route framework and service errors through :func:`error_response`."""

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
