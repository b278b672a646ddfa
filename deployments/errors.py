"""The one place that maps Sonaray's failures to HTTP status codes.

Every error is pickle-safe (it crosses Ray replica boundaries) and carries what the
router's error middleware needs to write the OpenAI-style error envelope.
"""

from __future__ import annotations


class SonarayError(Exception):
    """Base of every expected failure; ``status`` is the HTTP status it maps to."""

    status: int = 500
    type: str = "server_error"
    code: str | None = None

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code

    def __reduce__(self):
        return (_rebuild, (type(self), self.message, self.param, self.code))

    def to_dict(self) -> dict:
        return {"message": self.message, "type": self.type, "param": self.param, "code": self.code}


def _rebuild(cls: type[SonarayError], message: str, param: str | None, code: str | None):
    return cls(message, param=param, code=code)


class InvalidRequest(SonarayError):
    """Input the caller can fix: wrong type, empty text, bad option value."""

    status = 400
    type = "invalid_request_error"
    code = "invalid_request"


class InvalidAudio(InvalidRequest):
    """Audio that cannot be decoded, is empty, or has an unusable shape."""

    code = "invalid_audio"


class Unauthorized(SonarayError):
    status = 401
    type = "authentication_error"
    code = "invalid_api_key"


class ModelNotFound(SonarayError):
    status = 404
    type = "invalid_request_error"
    code = "model_not_found"


class PayloadTooLarge(SonarayError):
    """Over a configured limit: upload bytes, audio seconds or text characters."""

    status = 413
    type = "invalid_request_error"
    code = "limit_exceeded"


class UnsupportedMediaType(SonarayError):
    status = 415
    type = "invalid_request_error"
    code = "unsupported_media_type"


class RetryLater(SonarayError):
    """A refusal that a retry after ``retry_after_s`` seconds can overcome."""

    def __init__(self, message: str, *, retry_after_s: int = 1, **kwargs) -> None:
        super().__init__(message, **kwargs)
        self.retry_after_s = retry_after_s


class Overloaded(RetryLater):
    """The cluster is full, draining, or cannot meet the request's deadline."""

    status = 503
    type = "overloaded_error"
    code = "overloaded"


class RateLimited(RetryLater):
    """The caller's API key is over one of its limits."""

    status = 429
    type = "rate_limit_error"
    code = "rate_limited"


class DeadlineExceeded(SonarayError):
    """The caller's ``X-Request-Timeout`` passed; the request's work was cancelled."""

    status = 504
    type = "timeout_error"
    code = "deadline_exceeded"


class ModelError(SonarayError):
    """A model failed on an input it accepted: a server-side fault, not the caller's."""

    status = 500
    type = "server_error"
    code = "model_error"


class ConfigError(ValueError):
    """A bad Sonaray config, found when the application is built."""
