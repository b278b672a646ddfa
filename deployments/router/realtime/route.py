"""``GET /v1/realtime``: the WebSocket upgrade into a Realtime session.

The HTTP middleware does not run for WebSockets, so the API key is checked here, on the
upgrade's ``Authorization: Bearer`` header (what the ``openai`` package sends), or on a
browser's ``openai-insecure-api-key.<key>`` subprotocol; a refusal is an ``error`` event
and a close code, so a client sees why.
"""

from __future__ import annotations

from fastapi import APIRouter, WebSocket

from deployments.config import RealtimeConfig
from deployments.errors import InvalidRequest, Overloaded, SonarayError, Unauthorized
from deployments.protocol import ROLES
from deployments.router.http import bearer_token, current_service, key_is_valid
from deployments.router.realtime import events as ev
from deployments.router.realtime.responder import build_responder
from deployments.router.realtime.session import (
    CLOSE_ERROR,
    CLOSE_POLICY,
    CLOSE_TRY_AGAIN,
    RealtimeSession,
)
from deployments.router.realtime.settings import SessionSettings, asr_target
from deployments.router.service import SonarayService

router = APIRouter()
KEY_PROTOCOL = "openai-insecure-api-key."
_live = 0  # sessions on this router replica


@router.websocket("/v1/realtime")
async def realtime(ws: WebSocket, intent: str | None = None, model: str | None = None):
    """A Realtime session: ``?intent=transcription`` for transcription only."""
    global _live
    offered = ws.scope.get("subprotocols") or []
    await ws.accept(subprotocol="realtime" if "realtime" in offered else None)
    try:
        service = current_service()
        _authorize(ws, service, offered)
        if _live >= service.limits.max_sessions:
            raise Overloaded(
                f"this router replica holds {_live} sessions, its limit "
                "(limits.max_sessions); retry shortly"
            )
        session = _session(ws, service, intent, model)
    except SonarayError as exc:
        await ws.send_json(ev.error_event(exc))
        if isinstance(exc, Overloaded):
            await ws.close(CLOSE_TRY_AGAIN)
        else:
            await ws.close(CLOSE_ERROR if exc.status >= 500 else CLOSE_POLICY)
        return
    _live += 1
    try:
        await session.run()
    finally:
        _live -= 1


def _authorize(ws: WebSocket, service: SonarayService, offered: list[str]) -> None:
    if not service.api_keys:
        return
    token = bearer_token(ws.headers.get("authorization", ""))
    for protocol in offered:
        if protocol.startswith(KEY_PROTOCOL):
            token = token or protocol[len(KEY_PROTOCOL) :]
    if not key_is_valid(token, service.api_keys):
        raise Unauthorized("missing or invalid API key: send `Authorization: Bearer <key>`")


def _session(
    ws: WebSocket, service: SonarayService, intent: str | None, model: str | None
) -> RealtimeSession:
    """A transcription session (VAD -> ASR), or a conversation over ``args.realtime``."""
    realtime = service.args.realtime
    steps = service.pipeline_steps(realtime.pipeline) if realtime is not None else None
    if intent == "transcription":
        asr = asr_target(service, model)
        vad = service.target(ROLES.segment) if service.serves(ROLES.segment) else None
        if steps is not None:
            vad = steps[0]
            if model is None:
                asr = steps[1]
        settings = SessionSettings(kind="transcription", asr=asr)
        return RealtimeSession(ws, service, settings, realtime or RealtimeConfig(), vad)
    if steps is None:
        raise InvalidRequest(
            "conversation sessions need `realtime:` in the app args; "
            "connect with ?intent=transcription for a transcription session",
            param="intent",
        )
    vad, asr, voice = steps
    settings = SessionSettings(kind="realtime", asr=asr)
    responder = build_responder(realtime.responder)
    return RealtimeSession(ws, service, settings, realtime, vad, voice, responder)
