"""Access control: token scopes, which routes need which scope, and which run caller code."""

from __future__ import annotations

from deepaas_host.auth.caller_code import (
    CALLER_CODE_OPERATIONS,
    CallerCodeOperation,
    caller_code_operation,
)
from deepaas_host.auth.scopes import OPEN_ROUTES, Scope, is_loopback, required_scope

__all__ = [
    "CALLER_CODE_OPERATIONS",
    "OPEN_ROUTES",
    "CallerCodeOperation",
    "Scope",
    "caller_code_operation",
    "is_loopback",
    "required_scope",
]
