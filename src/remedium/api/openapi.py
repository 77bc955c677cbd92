"""The OpenAPI document says every error an operation can answer, with the body it really sends.

Every operation can answer 401 (no or a bad credential: ``auth/middleware.py``), 403 (a right is
missing, or a cookie-authenticated change lacks its CSRF token), 404 (the object does not exist
or lies outside the caller's device groups) and 422 (a parameter or body is invalid, including a
whole number outside 32 bits: ``api/integers.py``). The bodies:

- ``ErrorDetail``: ``{"detail": "message"}``: 401, 403 and 404 of the native API (``/api/v1``),
  and 401/403 everywhere (the middleware answers before any route);
- ``HTTPValidationError``: FastAPI's ``{"detail": [{"loc", "msg", "type"}]}``: every 422;
- ``ODataError``: Microsoft's ``{"error": {"code", "message", "target"}}``: 400 and 404 of the
  Defender-compatible API (``/api/...`` outside ``/api/v1``).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import (
    get_openapi,
    validation_error_definition,
    validation_error_response_definition,
)
from pydantic import BaseModel, Field

from remedium.auth.middleware import is_public


class ErrorDetail(BaseModel):
    """The body of 401, 403 and 404 answers: one sentence saying what is wrong."""

    detail: str = Field(description="what is wrong, for a person to read")


class ODataErrorBody(BaseModel):
    """Microsoft's error object."""

    code: str = Field(description="e.g. `BadRequest`, `ResourceNotFound`")
    message: str
    target: str = Field(description="a correlation id to quote")


class ODataError(BaseModel):
    """The body of errors of the Defender-compatible API (``/api/...`` outside ``/api/v1``)."""

    error: ODataErrorBody


_DESCRIPTIONS = {
    "400": "The OData options or a value are invalid.",
    "401": "No credential, or the token is unknown, revoked or expired.",
    "403": "A right is missing, or a form sent with the session cookie lacks its CSRF token.",
    "404": "The object does not exist or lies outside the caller's device groups.",
    "422": "A parameter or the body is invalid (whole numbers must fit in 32 bits).",
}


def _ref(name: str) -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}}


def _is_defender(path: str) -> bool:
    return path.startswith("/api/") and not path.startswith("/api/v1/")


def document_errors(schema: dict[str, Any]) -> dict[str, Any]:
    """Add the error answers (and their body models) to every operation of ``schema``."""
    schemas = schema.setdefault("components", {}).setdefault("schemas", {})
    for body_model in (ErrorDetail, ODataErrorBody, ODataError):
        schemas[body_model.__name__] = body_model.model_json_schema(
            ref_template="#/components/schemas/{model}"
        )
    if "HTTPValidationError" not in schemas:
        schemas["ValidationError"] = validation_error_definition
        schemas["HTTPValidationError"] = validation_error_response_definition
    for path, operations in schema.get("paths", {}).items():
        defender = _is_defender(path)
        for operation in operations.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            responses = operation["responses"]
            wanted = {
                "401": "ErrorDetail",
                "403": "ErrorDetail",
                "404": "ODataError" if defender else "ErrorDetail",
                "422": "HTTPValidationError",
            }
            if defender:
                wanted["400"] = "ODataError"
            if is_public(path):
                del wanted["401"], wanted["403"]
            for code, model in wanted.items():
                responses.setdefault(code, {"description": _DESCRIPTIONS[code]})
                responses[code].setdefault("content", _ref(model))
    return schema


def install_openapi(app: FastAPI) -> None:
    """Serve the OpenAPI document with the error answers of :func:`document_errors`."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document_errors(
                get_openapi(
                    title=app.title,
                    version=app.version,
                    description=app.description,
                    routes=app.routes,
                )
            )
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
