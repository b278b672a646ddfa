"""Cross-origin requests, off unless the app's ``cors.allow_origins`` names origins.

The FastAPI app is built at import time, before a replica knows its config, so this
middleware is installed on every app and builds Starlette's own ``CORSMiddleware`` from
the installed service's config on first use: no origins configured, no CORS headers.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send


class ConfiguredCORS:
    """ASGI middleware: Starlette's CORS with the running app's ``cors`` settings."""

    def __init__(self, app: ASGIApp, service: Callable[[], object | None]) -> None:
        self.app = app
        self.service = service
        self._cors: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        service = self.service()
        cors = getattr(getattr(service, "args", None), "cors", None)
        if cors is None or not cors.allow_origins:
            await self.app(scope, receive, send)
            return
        if self._cors is None:
            self._cors = CORSMiddleware(
                self.app,
                allow_origins=cors.allow_origins,
                allow_methods=cors.allow_methods,
                allow_headers=cors.allow_headers,
                expose_headers=["retry-after", "x-request-id"],
            )
        await self._cors(scope, receive, send)
