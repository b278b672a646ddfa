"""``GET /playground``: a page to try a cluster from a browser.

The microphone goes to a realtime session (live transcript, spoken replies in
conversation mode), and a text box speaks with streamed playback. The page is one static
file in the package: no build step, and nothing loaded from elsewhere, since clusters
often run offline.
"""

from __future__ import annotations

from importlib.resources import files

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

router = APIRouter()
PAGE = files("deployments.router").joinpath("static", "playground.html")


@router.get("/playground", include_in_schema=False)
async def playground() -> HTMLResponse:
    return HTMLResponse(PAGE.read_text(encoding="utf-8"))
