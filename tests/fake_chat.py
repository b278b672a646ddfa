"""A stand-in OpenAI-compatible ``/v1/chat/completions`` server for voice-agent tests.

It runs in the test process on a thread; Serve replicas on the same machine reach it.
``reply`` decides the answer from the messages; ``requests`` records what it was sent.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def say_back(messages: list[dict]) -> str:
    return "You said: " + messages[-1]["content"]


class FakeChat:
    def __init__(self, port: int):
        self.reply: Callable[[list[dict]], str] = say_back
        self.status = 200
        self.requests: list[dict] = []
        chat = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's name)
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                chat.requests.append(body)
                if chat.status != 200:
                    payload = {"error": {"message": "the model is down"}}
                else:
                    message = {"role": "assistant", "content": chat.reply(body["messages"])}
                    payload = {
                        "object": "chat.completion",
                        "choices": [{"index": 0, "message": message}],
                    }
                data = json.dumps(payload).encode()
                self.send_response(chat.status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeChat:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
