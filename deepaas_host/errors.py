"""Errors of the host. Each carries the HTTP status it is rendered with.

::

    HostError (500)
    ├── BadRequest (400)
    │   └── MalformedBody (400)
    ├── AuthenticationError (401)      missing, unknown or revoked access token
    ├── PermissionDenied (403)         the token's scope does not cover the route
    │   ├── CrossSiteRequest (403)     a browser page of another site sent it
    │   └── CodeExecutionDenied (403)  it would run code the caller sent; needs manage
    ├── NotFound (404)
    │   ├── ModelNotFound (404)
    │   ├── JobNotFound (404)
    │   ├── OnlineModelNotFound (404)
    │   ├── PredictionNotFound (404)   a label for an unknown or expired prediction
    │   ├── TokenNotFound (404)
    │   └── VersionNotFound (404)
    ├── MethodNotAllowed (405)
    ├── NotAcceptable (406)
    ├── RequestTimeout (408)           the request body stalled
    ├── Conflict (409)
    │   └── ModelAlreadyExists (409)   a version name that exists, without force
    ├── PayloadTooLarge (413)
    ├── HostNotAllowed (421)           the Host header is none of this host's names
    ├── ArgumentError (422)            bad arguments; ``details`` names each field
    ├── ModelError (500)               the plugin raised; names the exception type
    ├── ResponseValidationError (500)  the plugin's output breaks its own schema
    ├── VersionLoadError (500)         a version's artifact is missing/corrupt or load() failed
    ├── ArtifactError (500)            a version's artifact is missing or corrupt in the store
    ├── ArtifactStoreUnavailable (503) the artifact store cannot be reached or written
    ├── InsufficientStorage (507)      the disk (or the database) is full
    ├── StorageUnavailable (503)       the disk or the database failed a write
    ├── OnlineModelDamaged (503)       an online model's files are damaged; it is refused
    ├── WorkerCrashed (502)            the worker process died during the call
    ├── Overloaded (503)               queue full; rendered with ``Retry-After``
    ├── ShuttingDown (503)
    ├── ClientGone                     the client disconnected (never rendered)
    ├── DataDirectoryInUse             another host holds the data directory (never rendered)
    └── PluginLoadError                a plugin cannot be imported or lacks the contract

The model and job layers raise these; one middleware renders them as
``{"status": "error", "code": …, "error": "<Type>", "message": …, "details": …}``.
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "ArgumentError",
    "ArtifactError",
    "ArtifactStoreUnavailable",
    "AuthenticationError",
    "BadRequest",
    "ClientGone",
    "CodeExecutionDenied",
    "Conflict",
    "CrossSiteRequest",
    "DataDirectoryInUse",
    "HostError",
    "HostNotAllowed",
    "InsufficientStorage",
    "JobNotFound",
    "MalformedBody",
    "MethodNotAllowed",
    "ModelAlreadyExists",
    "ModelError",
    "ModelNotFound",
    "NotAcceptable",
    "NotFound",
    "OnlineModelDamaged",
    "OnlineModelNotFound",
    "Overloaded",
    "PayloadTooLarge",
    "PermissionDenied",
    "PluginLoadError",
    "PredictionNotFound",
    "RequestTimeout",
    "ResponseValidationError",
    "ShuttingDown",
    "StorageUnavailable",
    "TokenNotFound",
    "VersionLoadError",
    "VersionNotFound",
    "WorkerCrashed",
]


class HostError(Exception):
    """Root of the host's errors; ``status`` is the HTTP status it maps to."""

    status: ClassVar[int] = 500
    #: Seconds sent as ``Retry-After`` when the failure is expected to pass.
    retry_after: ClassVar[int | None] = None

    def __init__(self, message: str, *, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    @property
    def name(self) -> str:
        return type(self).__name__

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "status": "error",
            "code": self.status,
            "error": self.name,
            "message": self.message,
        }
        if self.details is not None:
            body["details"] = self.details
        return body


class BadRequest(HostError):
    status = 400


class MalformedBody(BadRequest):
    """The body cannot be parsed (broken multipart, invalid JSON, …)."""


class AuthenticationError(HostError):
    """No valid access token; ``challenge`` is sent as ``WWW-Authenticate``."""

    status = 401

    def __init__(self, message: str, *, challenge: str = "Bearer", details: Any = None) -> None:
        super().__init__(message, details=details)
        self.challenge = challenge


class PermissionDenied(HostError):
    """The access token is valid but its scope does not cover the route."""

    status = 403


class CrossSiteRequest(PermissionDenied):
    """A browser sent this request for a page of another site (``Origin``/``Sec-Fetch-Site``)."""


class CodeExecutionDenied(PermissionDenied):
    """The request would load or unpickle what the caller sent, which runs its code."""


class NotFound(HostError):
    status = 404


class ModelNotFound(NotFound):
    def __init__(self, name: str) -> None:
        super().__init__(f"Model {name!r} is not served here.")


class JobNotFound(NotFound):
    def __init__(self, model: str, job_id: str) -> None:
        super().__init__(f"Model {model!r} has no training job {job_id!r}.")


class VersionNotFound(NotFound):
    def __init__(self, model: str, version: str) -> None:
        super().__init__(f"Model {model!r} has no version {version!r}.")


class TokenNotFound(NotFound):
    def __init__(self, id_or_name: str) -> None:
        super().__init__(f"No access token has the id or name {id_or_name!r}.")


class OnlineModelNotFound(NotFound):
    def __init__(self, name: str) -> None:
        super().__init__(f"Online model {name!r} does not exist.")


class PredictionNotFound(NotFound):
    """A label for a prediction that is unknown, labelled already or expired."""


class MethodNotAllowed(HostError):
    status = 405


class NotAcceptable(HostError):
    status = 406


class RequestTimeout(HostError):
    """The client stopped sending the request body."""

    status = 408


class Conflict(HostError):
    status = 409


class ModelAlreadyExists(Conflict):
    def __init__(self, model: str, version: str) -> None:
        super().__init__(
            f"Model {model!r} already has a version {version!r}; send force=true to replace it."
        )


class PayloadTooLarge(HostError):
    status = 413


class HostNotAllowed(HostError):
    """The ``Host`` header names none of this host's names (DNS rebinding)."""

    status = 421


class ArgumentError(HostError):
    """Arguments failed validation; ``details`` maps each bad field to its messages."""

    status = 422


class ModelError(HostError):
    """The plugin raised; ``exc_type`` names the original exception type."""

    def __init__(self, exc_type: str, exc_message: str, *, model: str = "") -> None:
        where = f"Model {model!r} raised " if model else "The model raised "
        super().__init__(
            f"{where}{exc_type}: {exc_message}",
            details={"exception": exc_type, "exception_message": exc_message},
        )
        self.exc_type = exc_type
        self.exc_message = exc_message


class ResponseValidationError(HostError):
    """The plugin's output does not match the response schema it declared."""


class VersionLoadError(HostError):
    """A version could not be loaded; the message names the version and the cause."""


class ArtifactError(HostError):
    """A version's artifact is missing from the artifact store, or its checksum is wrong."""


class ArtifactStoreUnavailable(HostError):
    """The artifact store (a directory or an fsspec URL) cannot be reached or written."""

    status = 503


class InsufficientStorage(HostError):
    """A write failed because the disk, a quota or the database is full."""

    status = 507


class StorageUnavailable(HostError):
    """A write to the disk or the database failed for another reason."""

    status = 503
    retry_after = 5


class OnlineModelDamaged(HostError):
    """An online model's files are damaged; the model is refused until repaired."""

    status = 503


class WorkerCrashed(HostError):
    status = 502


class Overloaded(HostError):
    status = 503
    retry_after = 1


class ShuttingDown(HostError):
    status = 503
    retry_after = 5


class ClientGone(HostError):
    """The client went away before its call ran; the call is dropped, nobody is answered."""

    status = 499


class DataDirectoryInUse(HostError):
    """Another process holds the data directory's lock: this host does not start."""

    def __init__(self, directory: str, holder: int | None) -> None:
        who = f"another deepaas-host (pid {holder})" if holder else "another deepaas-host"
        super().__init__(
            f"the data directory {directory} is in use by {who}; stop that host, or give "
            "this one a data directory of its own with --data-dir."
        )
        self.directory = directory
        self.holder = holder


class PluginLoadError(HostError):
    """A selected plugin cannot be served; the message names plugin and package."""

    def __init__(self, plugin: str, distribution: str, reason: str) -> None:
        super().__init__(f"Plugin {plugin!r} (package {distribution}): {reason}")
        self.plugin = plugin
        self.distribution = distribution
        self.reason = reason
