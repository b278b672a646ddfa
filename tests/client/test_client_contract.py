"""The SDK against the server's real FastAPI router, task handles faked: routes and errors agree."""

from __future__ import annotations

import httpx
import pytest
from sonaray_client import (
    AsyncSonaray,
    AuthenticationError,
    ModelCard,
    NotFoundError,
    encode_wav,
)

from deployments.config import SonarayArgs
from deployments.router import http, native
from deployments.router.service import SonarayService

WAV = encode_wav([0.0] * 1600, 16000)
CARD = ModelCard(id="tiny-whisper", task="seq2seq", default=True, sampling_rate=16000)


class FakeMethod:
    def __init__(self, value: object) -> None:
        self.value = value

    async def remote(self, *args: object) -> object:
        return self.value


class FakeHandle:
    """Answers the model listing; any model call is a test failure."""

    model_cards = FakeMethod([CARD])

    def options(self, **kwargs: object) -> FakeHandle:
        return self

    async def remote(self, *args: object) -> object:
        raise AssertionError("the router should have refused this request before the model")


@pytest.fixture
def app(monkeypatch):
    app = http.create_app()
    app.include_router(native.router)
    args = SonarayArgs.model_validate({"models": [{"name": "tiny-whisper", "task": "seq2seq"}]})
    # The router keeps its service in a module global; monkeypatch puts the old one back.
    service = SonarayService(args, {"seq2seq": FakeHandle()}, {"sk-good"})
    monkeypatch.setattr(http, "_service", service)
    return app


def client(app, api_key: str) -> AsyncSonaray:
    transport = httpx.ASGITransport(app)
    return AsyncSonaray(
        base_url="http://router",
        api_key=api_key,
        max_retries=0,
        http_client=httpx.AsyncClient(transport=transport),
    )


async def test_health_and_models_parse(app):
    async with client(app, "sk-good") as sonaray:
        assert await sonaray.health() == {"status": "ok"}
        listing = await sonaray.models(extra_headers={"x-request-id": "mine-7"})
    assert listing.data == [CARD]
    # The result keeps the request id it was sent under and the router's own time.
    assert listing.response_info.request_id == "mine-7"
    assert set(listing.response_info.server_timing) == {"total"}


async def test_server_errors_arrive_as_typed_exceptions(app):
    async with client(app, "sk-good") as sonaray:
        with pytest.raises(NotFoundError) as unknown_model:
            await sonaray.transcribe(WAV, model="nope")
        with pytest.raises(NotFoundError, match="classify"):
            await sonaray.classify(WAV)
        with pytest.raises(NotFoundError, match="pipeline"):
            await sonaray.run_pipeline("nope", WAV)
    error = unknown_model.value
    assert (error.param, error.code) == ("model", "model_not_found")
    assert error.request_id and error.request_id == error.response.headers["x-request-id"]


async def test_wrong_api_key_is_an_authentication_error(app):
    async with client(app, "sk-bad") as sonaray:
        with pytest.raises(AuthenticationError, match="API key"):
            await sonaray.models()
