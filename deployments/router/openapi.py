"""The OpenAPI page documents what the HTTP shell adds to every route.

Routes declare their own bodies and 200s; the shell's part (the request id on every
answer, ``Server-Timing`` on 200, ``Retry-After`` on 503, bearer-key auth, 400 instead
of FastAPI's 422 for malformed fields) is added here once, so no route can forget it and
the docs page's Authorize button sends the key.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

BEARER = "bearerAuth"
VALIDATION_SCHEMAS = ("HTTPValidationError", "ValidationError")


def _header(description: str, schema: dict) -> dict:
    return {"description": description, "schema": schema}


def shell_openapi(app: FastAPI, *, open_paths: set[str], request_id: str) -> Callable[[], dict]:
    """An ``app.openapi`` that documents the shell's headers, auth and error statuses."""

    def openapi() -> dict:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        components = schema.setdefault("components", {})
        components.setdefault("securitySchemes", {})[BEARER] = {
            "type": "http",
            "scheme": "bearer",
            "description": "One of the cluster's API keys; checked only when keys are set.",
        }
        schema["security"] = [{BEARER: []}]
        for path, operations in schema["paths"].items():
            for operation in operations.values():
                if path in open_paths:
                    operation["security"] = []
                responses = operation["responses"]
                responses.pop("422", None)  # malformed fields answer 400 (see http.py)
                for status, response in responses.items():
                    headers = response.setdefault("headers", {})
                    headers[request_id] = _header(
                        "The request's id (the caller's, or one minted); in logs and errors.",
                        {"type": "string"},
                    )
                    if status == "200":
                        headers["server-timing"] = _header(
                            "The router's time on the request (`total`), after any per-step "
                            "timings.",
                            {"type": "string"},
                        )
                    if status == "503":
                        headers["Retry-After"] = _header(
                            "Seconds to wait before retrying.", {"type": "integer"}
                        )
        for name in VALIDATION_SCHEMAS:
            components.get("schemas", {}).pop(name, None)
        app.openapi_schema = schema
        return schema

    return openapi
