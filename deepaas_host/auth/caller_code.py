"""The operations that run code the caller sent, declared once.

Unpickling a file runs whatever the file says; so does loading a model with joblib,
torch or a plugin's own ``load()``. Each route that does so calls one guard
(``deepaas_host.api.code_guard.require_code_execution``), and the OpenAPI document
marks the same operations with ``x-runs-caller-code``; both read this list, so a
route cannot run caller code unguarded or undocumented without a failing test.

Paths are route templates relative to the base path; a ``{…}`` segment stands for
any one segment (the document names each model literally).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CALLER_CODE_OPERATIONS", "CallerCodeOperation", "caller_code_operation"]


@dataclass(frozen=True)
class CallerCodeOperation:
    """A route that loads or unpickles what a caller sent, and what it runs."""

    method: str
    path: str
    #: What runs, completing "This request …".
    runs: str

    def matches(self, method: str, route: str) -> bool:
        if method.upper() != self.method:
            return False
        mine, theirs = self.path.split("/"), route.split("/")
        return len(mine) == len(theirs) and all(
            a == b or (a.startswith("{") and a.endswith("}") and b != "")
            for a, b in zip(mine, theirs, strict=True)
        )


CALLER_CODE_OPERATIONS: tuple[CallerCodeOperation, ...] = (
    CallerCodeOperation(
        "POST",
        "/v2/online/",
        "unpickles the uploaded file (when a file is sent instead of a plugin)",
    ),
    CallerCodeOperation(
        "POST",
        "/v2/models/{name}/versions/",
        "loads the uploaded file with the model's load() (joblib, pickle, torch, …) to check it",
    ),
    CallerCodeOperation(
        "POST",
        "/v2/models/{name}/versions/{version}/load",
        "loads an uploaded version with the model's load()",
    ),
)


def caller_code_operation(method: str, route: str | None) -> CallerCodeOperation | None:
    """The declared operation ``method`` on the route template ``route`` is, if any."""
    if route is None:
        return None
    for operation in CALLER_CODE_OPERATIONS:
        if operation.matches(method, route):
            return operation
    return None
