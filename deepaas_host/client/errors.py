"""Errors raised by the client. Every one derives from :class:`ClientError`.

::

    ClientError
    ├── ProfileError              a profile file or profile is missing or invalid
    ├── HostUnreachable           no HTTP answer (refused, DNS, timeout)
    ├── ChecksumMismatch          a download's SHA-256 differs from the host's
    ├── TrainingTimeout           wait_for_training gave up (also a TimeoutError)
    └── HostError                 the host answered with an error; ``status``, ``message``
        ├── AuthenticationError   401 (no or bad token) and 403 (token lacks the scope)
        ├── ModelNotFound         404: no such model
        │   └── VersionNotFound   404: the model exists, the version does not
        ├── JobNotFound           404: no such training job
        ├── ModelAlreadyExists    409: the version exists (upload again with force)
        └── ValidationError       422: ``fields`` maps each bad argument to its messages

The host answers errors as ``{"status": "error", "code", "error", "message",
"details", "request_id"}``; :func:`error_from_response` picks the class from the
``error`` name, then from the status.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import requests

__all__ = [
    "AuthenticationError",
    "ChecksumMismatch",
    "ClientError",
    "HostError",
    "HostUnreachable",
    "JobNotFound",
    "ModelAlreadyExists",
    "ModelNotFound",
    "ProfileError",
    "TrainingTimeout",
    "ValidationError",
    "VersionNotFound",
    "error_from_response",
]


class ClientError(Exception):
    """Root of the client's errors."""


class ProfileError(ClientError):
    """A profile cannot be found or is not valid; the message says where it looked."""


class HostUnreachable(ClientError):
    """The request got no HTTP answer."""


class ChecksumMismatch(ClientError):
    """A downloaded file does not match the SHA-256 the host announced."""

    def __init__(self, model: str, version: str, expected: str, actual: str) -> None:
        super().__init__(
            f"Download of model {model!r} version {version!r} is corrupt: "
            f"SHA-256 {actual}, the host announced {expected}."
        )
        self.model = model
        self.version = version
        self.expected = expected
        self.actual = actual


class TrainingTimeout(ClientError, TimeoutError):
    """A training job did not finish in the time given to wait for it."""

    def __init__(self, model: str, job_id: str, timeout: float, job: Mapping[str, Any]) -> None:
        super().__init__(
            f"Training job {job_id!r} of model {model!r} is still {job.get('status')!r} "
            f"after {timeout:g}s."
        )
        self.model = model
        self.job_id = job_id
        self.job = dict(job)


class HostError(ClientError):
    """The host answered with an error status.

    ``status`` is the HTTP status, ``error`` the host's error name (``"ArgumentError"``),
    ``details`` its structured details and ``request_id`` the id to find the call in
    the host's log. ``model`` and ``version`` name what the call was about.
    """

    def __init__(
        self,
        status: int,
        message: str,
        *,
        error: str | None = None,
        details: Any = None,
        request_id: str | None = None,
        model: str | None = None,
        version: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.error = error
        self.details = details
        self.request_id = request_id
        self.model = model
        self.version = version

    def __str__(self) -> str:
        text = f"{self.message} (HTTP {self.status})"
        if self.model is not None and repr(self.model) not in self.message:
            about = f"Model {self.model!r}"
            if self.version is not None:
                about += f" version {self.version!r}"
            text = f"{about}: {text}"
        return text


class AuthenticationError(HostError):
    """401: no token or a token the host does not know; 403: the token lacks the scope."""


class ModelNotFound(HostError):
    """The host serves no model of this name."""


class VersionNotFound(ModelNotFound):
    """The model has no version of this name."""


class JobNotFound(HostError):
    """The model has no training job with this id."""


class ModelAlreadyExists(HostError):
    """A version of this name exists; upload again with ``force=True`` to replace it."""


class ValidationError(HostError):
    """The host refused the arguments; ``fields`` maps each bad one to its messages."""

    @property
    def fields(self) -> dict[str, list[str]]:
        details = self.details if isinstance(self.details, Mapping) else {}
        return {str(name): _messages(value) for name, value in details.items()}


def _messages(value: Any) -> list[str]:
    if isinstance(value, list | tuple):
        return [m for item in value for m in _messages(item)]
    if isinstance(value, Mapping):
        return [f"{key}: {m}" for key, item in value.items() for m in _messages(item)]
    return [str(value)]


_BY_NAME: dict[str, type[HostError]] = {
    "AuthenticationError": AuthenticationError,
    "PermissionDenied": AuthenticationError,
    "ModelNotFound": ModelNotFound,
    "VersionNotFound": VersionNotFound,
    "JobNotFound": JobNotFound,
    "ModelAlreadyExists": ModelAlreadyExists,
    "ArgumentError": ValidationError,
}

_BY_STATUS: dict[int, type[HostError]] = {
    401: AuthenticationError,
    403: AuthenticationError,
    422: ValidationError,
}


def _default_message(status: int, model: str | None, version: str | None) -> str:
    if status == 404 and model is not None:
        if version is not None:
            return f"Model {model!r} has no version {version!r}."
        return f"Model {model!r} is not served here."
    if status == 409 and model is not None:
        return f"Model {model!r} already has version {version!r}."
    return f"The host answered {status}."


def error_from_response(
    response: requests.Response, *, model: str | None = None, version: str | None = None
) -> HostError:
    """The typed error for an error answer (any status of 400 and above)."""
    body: Any = None
    if "json" in response.headers.get("Content-Type", ""):
        try:
            body = response.json()
        except ValueError:
            body = None
    if not isinstance(body, Mapping):
        body = {}
    name = body.get("error") if isinstance(body.get("error"), str) else None
    cls = _BY_NAME.get(name or "") or _BY_STATUS.get(response.status_code, HostError)
    message = body.get("message")
    if not isinstance(message, str) or not message:
        message = _default_message(response.status_code, model, version)
    request_id = body.get("request_id") or response.headers.get("X-Request-ID")
    return cls(
        response.status_code,
        message,
        error=name,
        details=body.get("details"),
        request_id=request_id,
        model=model,
        version=version,
    )
