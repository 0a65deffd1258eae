"""Token authentication for :class:`~deepaas_host.client.Client`.

The host takes a token either as ``Authorization: Bearer <token>`` or in a
``standAloneToken`` header (the header DEEPaaS-era clients send). Both classes are
``requests`` authentication handlers, so they work with any ``requests`` call too::

    >>> import requests
    >>> request = requests.Request("GET", "http://host/v2/models/", auth=BearerTokenAuth("s3cret"))
    >>> request.prepare().headers["Authorization"]
    'Bearer s3cret'
"""

from __future__ import annotations

from typing import Final, Literal

from requests import PreparedRequest
from requests.auth import AuthBase

__all__ = [
    "AUTH_TYPES",
    "BEARER",
    "STANDALONE",
    "AuthType",
    "BearerTokenAuth",
    "StandAloneTokenAuth",
    "TokenAuth",
    "token_auth",
]

AuthType = Literal["bearer", "standalone"]

#: ``Authorization: Bearer <token>`` (the default).
BEARER: Final = "bearer"
#: ``standAloneToken: <token>``.
STANDALONE: Final = "standalone"
AUTH_TYPES: Final = (BEARER, STANDALONE)


class TokenAuth(AuthBase):
    """Adds a token to every request; the token is never shown by ``repr``."""

    header: str = ""

    def __init__(self, token: str) -> None:
        if not token or any(c in token for c in "\r\n"):
            raise ValueError("A token must be a non-empty single line.")
        self.token = token

    def value(self) -> str:
        return self.token

    def __call__(self, request: PreparedRequest) -> PreparedRequest:
        request.headers[self.header] = self.value()
        return request

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and getattr(other, "token", None) == self.token

    def __hash__(self) -> int:
        return hash((type(self), self.token))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(<token hidden>)"


class BearerTokenAuth(TokenAuth):
    """``Authorization: Bearer <token>``."""

    header = "Authorization"

    def value(self) -> str:
        return f"Bearer {self.token}"


class StandAloneTokenAuth(TokenAuth):
    """``standAloneToken: <token>``."""

    header = "standAloneToken"


def token_auth(token: str, auth_type: str = BEARER) -> TokenAuth:
    """The authentication handler for ``auth_type`` (``"bearer"`` or ``"standalone"``)."""
    kind = auth_type.strip().lower()
    if kind == BEARER:
        return BearerTokenAuth(token)
    if kind == STANDALONE:
        return StandAloneTokenAuth(token)
    raise ValueError(f"Unknown auth type {auth_type!r}; use one of: {', '.join(AUTH_TYPES)}.")
