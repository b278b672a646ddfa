"""The HTTP shell every route shares: the FastAPI app, request ids, auth, body limits and
the one error envelope. Routes get the replica's ``SonarayService`` through ``Service``."""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import time
import uuid
from typing import Annotated

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sonaray_client.types import ErrorEnvelope

from deployments.config import AuthConfig
from deployments.errors import Overloaded, PayloadTooLarge, RetryLater, SonarayError, Unauthorized
from deployments.router.cors import ConfiguredCORS
from deployments.router.openapi import shell_openapi
from deployments.router.request_scope import TIMEOUT_HEADER, open_scope
from deployments.router.service import SonarayService

logger = logging.getLogger("ray.serve")

OPEN_PATHS = {
    "/healthz",
    "/docs",
    "/redoc",
    "/openapi.json",
    "/docs/oauth2-redirect",
    "/playground",  # a static page: the key is typed into it, and sent by its requests
}
REQUEST_ID = "x-request-id"

ERROR_RESPONSES = {
    status: {"model": ErrorEnvelope, "description": text}
    for status, text in {
        400: "Invalid input: a malformed or unknown field, undecodable audio, empty text, a "
        "bad option, an OpenAI field Sonaray cannot honour (`param` names the field).",
        401: "Missing or wrong API key.",
        404: "Unknown model or pipeline.",
        413: "Over a limit: upload bytes, audio seconds or text characters.",
        415: "Audio format not accepted.",
        429: "The API key is over its concurrency or audio-per-minute limit; see `Retry-After`.",
        500: "A fault on the server's side (a model failed on input it accepted).",
        503: "The cluster is full (the request would queue past `limits.max_queue_seconds` or "
        "its `X-Request-Timeout`), draining, or a replica is restarting; see `Retry-After`.",
        504: "The request's `X-Request-Timeout` passed; its work was cancelled.",
    }.items()
}

_service: SonarayService | None = None
# Serve's HTTP proxy already copies the request id onto every response; the app adds
# the header itself only when it runs without that proxy (e.g. a plain ASGI server).
_echo_request_id = True


def install_service(service: SonarayService, *, behind_serve_proxy: bool = False) -> None:
    """Set this replica's service (one Router per replica process)."""
    global _service, _echo_request_id
    _service = service
    _echo_request_id = not behind_serve_proxy


def current_service() -> SonarayService:
    if _service is None:
        raise Overloaded("the router is still starting")
    return _service


def installed_service() -> SonarayService | None:
    return _service


Service = Annotated[SonarayService, Depends(current_service)]


def error_response(exc: SonarayError, request_id: str) -> JSONResponse:
    headers = {REQUEST_ID: request_id} if _echo_request_id else {}
    if isinstance(exc, RetryLater):
        headers["Retry-After"] = str(exc.retry_after_s)
    body = {"error": exc.to_dict(), "request_id": request_id}
    return JSONResponse(body, status_code=exc.status, headers=headers)


def load_api_keys(auth: AuthConfig) -> set[str]:
    """Keys from the configured environment variable and/or file (one per line or comma)."""
    raw = ""
    if auth.api_keys_env:
        raw += os.environ.get(auth.api_keys_env, "")
    if auth.api_keys_file is not None:
        raw += "\n" + auth.api_keys_file.read_text()
    return {k.strip() for k in raw.replace(",", "\n").splitlines() if k.strip()}


def create_app() -> FastAPI:
    app = FastAPI(
        title="Sonaray",
        version="0.1.0",
        description="Hugging Face audio models served by Ray Serve: native task routes, "
        "pipelines, an OpenAI-compatible audio API and Hugging Face task routes.",
    )
    app.openapi = shell_openapi(app, open_paths=OPEN_PATHS, request_id=REQUEST_ID)

    @app.middleware("http")
    async def envelope(request: Request, call_next):
        request_id = request.headers.get(REQUEST_ID) or uuid.uuid4().hex
        request.state.request_id = request_id
        started = time.perf_counter()
        try:
            key = _authorize(request)
            _check_length(request)
            scope = open_scope(request_id, key, request.headers.get(TIMEOUT_HEADER))
            if _service is None:
                response = await call_next(request)
            else:
                with _service.quotas.request(scope.caller), _service.admission.load.track():
                    response = await call_next(request)
        except SonarayError as exc:
            return error_response(exc, request_id)
        if _echo_request_id:
            response.headers[REQUEST_ID] = request_id
        # The router's whole time on the request, after any per-step timings a route set,
        # so a caller can tell the cluster's time from the network's.
        total = f"total;dur={(time.perf_counter() - started) * 1000:.1f}"
        timing = response.headers.get("server-timing")
        response.headers["server-timing"] = f"{timing}, {total}" if timing else total
        return response

    @app.exception_handler(SonarayError)
    async def sonaray_error(request: Request, exc: SonarayError):
        return error_response(exc, request.state.request_id)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {}
        param = ".".join(str(p) for p in first.get("loc", ())[1:]) or None
        err = SonarayError(f"invalid request: {first.get('msg', exc)}", param=param)
        # 400 as OpenAI answers it (openai-python raises BadRequestError), not FastAPI's 422
        err.status, err.type, err.code = 400, "invalid_request_error", "invalid_field"
        return error_response(err, request.state.request_id)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception):
        logger.exception("unhandled error in request %s", request.state.request_id)
        err = SonarayError(f"internal error ({type(exc).__name__}); request id in the logs")
        return error_response(err, request.state.request_id)

    # Added last, so it runs first: a browser's preflight needs no API key.
    app.add_middleware(ConfiguredCORS, service=installed_service)
    return app


def _authorize(request: Request) -> str | None:
    """The caller's API key, checked in constant time against every configured key."""
    keys = _service.api_keys if _service is not None else set()
    if not keys or request.url.path in OPEN_PATHS:
        return None
    token = bearer_token(request.headers.get("authorization", ""))
    if not key_is_valid(token, keys):
        raise Unauthorized("missing or invalid API key: send `Authorization: Bearer <key>`")
    return token


def bearer_token(header: str) -> str:
    """The key of an ``Authorization: Bearer <key>`` header ("" if it has none)."""
    return header[7:].strip() if header.lower().startswith("bearer ") else ""


def key_is_valid(token: str, keys: set[str]) -> bool:
    """Whether ``token`` is one of ``keys``, compared in constant time.

    Digests have one length, and every key is compared: the time taken says nothing about
    the key, its length, or which key came closest.
    """
    sent = hashlib.sha256(token.encode()).digest()
    matches = [hmac.compare_digest(sent, hashlib.sha256(k.encode()).digest()) for k in keys]
    return bool(token) and any(matches)


def _check_length(request: Request) -> None:
    """Refuse an over-size body from its Content-Length before reading it."""
    length = request.headers.get("content-length")
    if _service is None or length is None or not length.isdigit():
        return
    limit = _service.limits.max_upload_bytes + 64 * 1024  # multipart framing and fields
    if int(length) > limit:
        raise PayloadTooLarge(
            f"request body is {length} bytes; the upload limit is "
            f"{_service.limits.max_upload_bytes} bytes",
            param="file",
        )
