"""What a result keeps of the HTTP response that brought it: request id and server timings.

A user reporting a slow or wrong answer quotes ``result.response_info.request_id``; the
server's ``server-timing`` header says where the time went.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any

import httpx

from sonaray_client.errors import request_id_of


@dataclass(frozen=True)
class ResponseInfo:
    """The parts of a response a caller may need after the call."""

    request_id: str | None
    status_code: int
    # ``server-timing`` metrics by name, in milliseconds (``{"total": 812.4, ...}``).
    server_timing: dict[str, float] = field(default_factory=dict)
    elapsed_s: float | None = None

    @classmethod
    def of(cls, response: httpx.Response) -> ResponseInfo:
        try:
            elapsed = response.elapsed.total_seconds()
        except RuntimeError:  # a response built by hand (tests) was never timed
            elapsed = None
        return cls(
            request_id=request_id_of(response),
            status_code=response.status_code,
            server_timing=parse_server_timing(response.headers.get_list("server-timing")),
            elapsed_s=elapsed,
        )


class AudioBytes(bytes):
    """Encoded audio as ``bytes``, plus the response it came in and its sampling rate."""

    response_info: ResponseInfo | None = None
    content_type: str | None = None
    sampling_rate: int | None = None

    @classmethod
    def of(cls, response: httpx.Response) -> AudioBytes:
        audio = cls(response.content)
        audio.response_info = ResponseInfo.of(response)
        audio.content_type = response.headers.get("content-type")
        rate = response.headers.get("x-sampling-rate", "")
        audio.sampling_rate = int(rate) if rate.isdigit() else None
        return audio


def attach(result: Any, response: httpx.Response) -> Any:
    """Give a parsed wire result its ``response_info``; returns ``result``.

    ``WireResult.response_info`` is a cached property, so the value lives in the instance
    ``__dict__`` beside the fields: pydantic leaves such entries out of ``==``, dumps and
    ``repr``, so results compare and serialise by their content alone.
    """
    result.__dict__["response_info"] = ResponseInfo.of(response)
    return result


def parse_server_timing(values: list[str]) -> dict[str, float]:
    """``name;dur=12.5;desc="..."`` entries (several headers or comma-separated) → {name: ms}."""
    timings: dict[str, float] = {}
    for value in values:
        for entry in value.split(","):
            name, *params = (part.strip() for part in entry.split(";"))
            if not name:
                continue
            duration = 0.0
            for param in params:
                key, _, raw = param.partition("=")
                if key.strip().lower() == "dur":
                    with contextlib.suppress(ValueError):
                        duration = float(raw.strip().strip('"'))
            timings[name] = duration
    return timings
