"""The conversation side of a session: the user's turns and the replies, one at a time.

A new turn, barge-in or ``response.cancel`` stops the reply in progress; its task then
sends ``response.done`` with status ``cancelled`` (see ``reply.py``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from deployments.errors import Overloaded
from deployments.protocol import Target
from deployments.router.realtime.reply import Reply, Send, speak_reply
from deployments.router.realtime.responder import Responder
from deployments.router.realtime.settings import SessionSettings

HISTORY_MESSAGES = 20

Call = Callable[[Target, Any], Awaitable[Any]]


class Conversation:
    def __init__(
        self, responder: Responder, voice: Target, call: Call, send: Send, timeout_s: float
    ):
        self.responder, self.voice, self.call, self.send = responder, voice, call, send
        self.timeout_s = timeout_s
        self.history: list[dict] = []
        self.reply: Reply | None = None
        self.task: asyncio.Task | None = None

    async def answer(self, text: str, settings: SessionSettings) -> None:
        """Start the spoken reply to the user's ``text`` (stopping the one in progress)."""
        await self.cancel("turn_detected")
        self.history = [*self.history, {"role": "user", "content": text}][-HISTORY_MESSAGES:]
        reply = Reply(settings)
        history, instructions = list(self.history), settings.instructions

        async def reply_text() -> str:
            try:
                work = self.responder.reply(history, instructions)
                return await asyncio.wait_for(work, self.timeout_s)
            except TimeoutError:
                raise Overloaded(
                    f"the responder did not answer within {self.timeout_s:g}s"
                ) from None

        async def run() -> None:
            said = await speak_reply(reply, reply_text, self.call, self.voice, self.send)
            if said:
                self.history = [*self.history, {"role": "assistant", "content": said}]

        self.reply, self.task = reply, asyncio.create_task(run())

    async def cancel(self, reason: str | None) -> bool:
        """Stop the reply in progress; False if there is none."""
        task = self.task
        if task is None or task.done():
            return False
        self.reply.reason = reason
        task.cancel()
        await asyncio.wait([task])  # its outcome is in the events it sent; ours propagates
        return True

    def stop(self) -> None:
        """Cancel without waiting (the session is being torn down)."""
        if self.task is not None:
            self.task.cancel()
