"""Responders turn what the user said into what the session says back.

``echo`` repeats the transcript (the ``speech-to-speech`` pipeline, live). ``chat`` asks
any OpenAI-compatible ``/v1/chat/completions`` URL, which makes the session a voice agent;
its failures (timeouts, HTTP errors, odd bodies) are typed errors the session reports.
"""

from __future__ import annotations

import os
from typing import Protocol

import httpx

from deployments.config import ChatResponder, EchoResponder
from deployments.errors import SonarayError


class ResponderError(SonarayError):
    """The configured chat endpoint failed: a server-side fault, not the caller's."""

    status = 502
    type = "server_error"
    code = "responder_error"


class Responder(Protocol):
    async def reply(self, history: list[dict], instructions: str | None) -> str:
        """The reply to the conversation so far (its last message is the user's turn)."""
        ...


class Echo:
    async def reply(self, history: list[dict], instructions: str | None) -> str:
        return history[-1]["content"]


class Chat:
    def __init__(self, config: ChatResponder):
        self.config = config
        key = os.environ.get(config.api_key_env, "") if config.api_key_env else ""
        self.headers = {"Authorization": f"Bearer {key}"} if key else {}

    async def reply(self, history: list[dict], instructions: str | None) -> str:
        system = instructions or self.config.system_prompt
        messages = ([{"role": "system", "content": system}] if system else []) + history
        body = {"model": self.config.model, "messages": messages}
        url = self.config.url
        try:
            async with httpx.AsyncClient(timeout=self.config.timeout_s) as client:
                response = await client.post(url, json=body, headers=self.headers)
        except httpx.TimeoutException:
            raise ResponderError(
                f"the chat responder at {url} did not answer within {self.config.timeout_s}s"
            ) from None
        except httpx.HTTPError as exc:
            raise ResponderError(f"the chat responder at {url} failed: {exc}") from None
        if response.status_code != 200:
            raise ResponderError(
                f"the chat responder at {url} answered {response.status_code}: "
                f"{response.text[:200]}"
            )
        try:
            return str(response.json()["choices"][0]["message"]["content"] or "")
        except (ValueError, KeyError, IndexError, TypeError):
            raise ResponderError(
                f"the chat responder at {url} answered without choices[0].message.content"
            ) from None


def build_responder(config: EchoResponder | ChatResponder) -> Responder:
    return Chat(config) if isinstance(config, ChatResponder) else Echo()
