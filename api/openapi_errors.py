"""The error statuses each operation can answer, in the OpenAPI document.

Every error has one shape (``{"error": {"code", "message"}}``, see api.errors);
FastAPI documents only the 422 of its own validation. This adds, per operation,
the statuses it can return — derived from what the operation is (guarded by the
key, reading path ids, taking a body) plus the few conflicts some have — each
with an example, so generated clients and /docs show them.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from api.json_body import body_schemas

ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
        }
    },
}
EXAMPLES = {
    "401": ("Missing API key", "missing_api_key", "this endpoint needs the X-API-Key header"),
    "403": ("Wrong API key", "wrong_api_key", "the X-API-Key header is not the right key"),
    "404": ("Unknown id", "unknown_user", "unknown user id 'u42'"),
    "409": (
        "Conflict",
        "no_rating_model",
        "only a ranking model is active and its scores are not ratings",
    ),
    "413": ("Body too large", "body_too_large", "request body over 8,388,608 bytes"),
    "422": ("Invalid request", "invalid_request", "n: Input should be less than or equal to 500"),
    "503": ("Not available", "no_model", "no model is active yet: run `recsys train`"),
}
# Operations that can conflict with the service's state, beyond the general rules.
CONFLICTS = {
    ("post", "/predictions"),
    ("post", "/models/{version_id}/activate"),
    ("post", "/models/rollback"),
    ("get", "/users/{user_id}/similar"),
}


def statuses(method: str, path: str, operation: dict[str, Any]) -> list[str]:
    """The error statuses of one operation."""
    found = ["503"] if path != "/health" else []
    if operation.get("security"):
        found += ["401", "403"]
    if "{" in path:
        found.append("404")
    if (method, path) in CONFLICTS:
        found.append("409")
    if "requestBody" in operation:
        found += ["413", "422"]
    elif operation.get("parameters"):
        found.append("422")
    return sorted(set(found))


def document_errors(app: FastAPI) -> None:
    """Make ``app.openapi()`` list each operation's error statuses (built once)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
        )
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components["Error"] = ERROR_SCHEMA
        for name, body in body_schemas().items():  # bodies read off the loop (api.json_body)
            components.setdefault(name, body)
        for path, methods in schema["paths"].items():
            for method, operation in methods.items():
                responses = operation.setdefault("responses", {})
                for status in statuses(method, path, operation):
                    summary, code, message = EXAMPLES[status]
                    responses[status] = {
                        "description": summary,
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/Error"},
                                "example": {"error": {"code": code, "message": message}},
                            }
                        },
                    }
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way to replace the schema
