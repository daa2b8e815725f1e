"""Big JSON bodies are parsed and validated in a worker thread, not on the event loop.

FastAPI reads and validates a declared body on the event loop before the endpoint
runs: 10,000 ratings with long ids take tens of milliseconds, during which the
worker answers nothing else (``/health``'s median went from 3 to 74 ms while four
clients posted 7.5 MB bodies). The endpoints that take big bodies (feedback,
predictions, tabular rows) declare them with :func:`json_body` instead: a body over
``OFF_LOOP_BYTES`` is parsed and validated by pydantic in the thread pool, a small one
on the loop as before (the hop would cost more than the work). Errors are the same
422 as FastAPI's (``body.<field>`` locations), and :func:`documented` puts the body's
schema in the OpenAPI document as a declared body would be.
"""

from __future__ import annotations

from typing import Any, TypeVar

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from pydantic.json_schema import models_json_schema

OFF_LOOP_BYTES = 64 * 1024
Model = TypeVar("Model", bound=BaseModel)
BODY_MODELS: set[type[BaseModel]] = set()  # for the OpenAPI document


def json_body(model: type[Model]) -> Any:
    """A dependency giving the request's body validated as ``model``."""
    BODY_MODELS.add(model)

    async def read(request: Request) -> Model:
        body = await request.body()
        try:
            if len(body) > OFF_LOOP_BYTES:
                return await run_in_threadpool(model.model_validate_json, body)
            return model.model_validate_json(body)
        except ValidationError as error:
            problems = error.errors(include_url=False)
            raise RequestValidationError(
                [{**problem, "loc": ("body", *problem["loc"])} for problem in problems]
            ) from None

    return Depends(read)


def documented(model: type[BaseModel]) -> dict[str, Any]:
    """``openapi_extra`` of a route whose body is ``json_body(model)``."""
    schema = {"$ref": f"#/components/schemas/{model.__name__}"}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def body_schemas() -> dict[str, Any]:
    """The OpenAPI component schemas of every body declared with :func:`json_body`."""
    models = sorted(BODY_MODELS, key=lambda model: model.__name__)
    _, top = models_json_schema(
        [(model, "validation") for model in models], ref_template="#/components/schemas/{model}"
    )
    return top.get("$defs", {})
