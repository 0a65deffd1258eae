"""Access control: token scopes and which routes need which scope."""

from __future__ import annotations

from deepaas_host.auth.scopes import OPEN_ROUTES, Scope, is_loopback, required_scope

__all__ = ["OPEN_ROUTES", "Scope", "is_loopback", "required_scope"]
