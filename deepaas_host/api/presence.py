"""Whether the client of a request is still connected."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

__all__ = ["client_gone"]


def client_gone(request: web.Request) -> Callable[[], bool]:
    """A check, cheap enough to run at every dispatch, that the client has hung up.

    aiohttp notices a closed connection while the handler waits (it keeps
    reading for the next request), drops the transport, and lets the handler
    run on; nothing is cancelled, the check is asked when the call's turn comes.
    """

    def gone() -> bool:
        transport = request.transport
        return transport is None or transport.is_closing()

    return gone
