"""The TCP site of ``deepaas-host run``: open connections per client, header deadline.

Without these a few thousand half-sent requests exhaust the host's file descriptors
and every new client is reset. Each accepted connection gets a
:class:`GuardedConnection`, a protocol that wraps aiohttp's request handler (through
its public protocol methods only) and enforces two limits:

- **Connections per client address** (``max_connections_per_client``, 0 for no cap):
  the connection over the cap is answered a canned ``503`` in the host's error shape
  (``Overloaded``, with ``Retry-After`` and ``Connection: close``) and closed; aiohttp
  never sees it.
- **Header deadline** (``header_timeout``): a connection that has not sent a complete
  request header block that many seconds after it opened is answered ``408``
  (``RequestTimeout``) and closed.

Later requests on a kept-alive connection are bounded by aiohttp's keep-alive timeout
(``keepalive_timeout``, given to the runner): it closes a connection idle, or dribbling
its next request, that long after the previous answer.

Each limit hit logs a warning, at most one line per client address and limit every
``REPORT_INTERVAL`` seconds, counting the connections refused or closed since.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, cast

from aiohttp import web

from deepaas_host.errors import HostError, Overloaded, RequestTimeout
from deepaas_host.settings import Settings

__all__ = [
    "REPORT_INTERVAL",
    "ConnectionGuard",
    "ConnectionLimits",
    "GuardedConnection",
    "GuardedSite",
    "canned_response",
]

log = logging.getLogger(__name__)

REPORT_INTERVAL = 10.0
# After a canned answer the write side is shut and the client's bytes are read and
# dropped for this long: closing a socket with unread input resets it, and the reset
# can destroy the answer before the client reads it.
_LINGER = 1.0
# Beyond this many lingering at once (a flood), answered connections close at once.
_MAX_LINGERING = 1024


@dataclass(frozen=True)
class ConnectionLimits:
    #: Open connections one client address may have; 0: no cap.
    per_client: int = 256
    #: Seconds from opening to the end of the first request's header block.
    header_timeout: float = 10.0

    @classmethod
    def from_settings(cls, settings: Settings) -> ConnectionLimits:
        return cls(settings.max_connections_per_client, settings.header_timeout)


def canned_response(error: HostError) -> bytes:
    """A complete ``HTTP/1.1`` answer rendering ``error``, closing the connection."""
    body = json.dumps(error.to_dict()).encode()
    head = [
        f"HTTP/1.1 {error.status} {HTTPStatus(error.status).phrase}",
        "Content-Type: application/json; charset=utf-8",
        f"Content-Length: {len(body)}",
        "Connection: close",
    ]
    if error.retry_after is not None:
        head.append(f"Retry-After: {error.retry_after}")
    return ("\r\n".join(head) + "\r\n\r\n").encode("ascii") + body


class _Reports:
    """At most one report per key every ``interval`` seconds, counting the events between."""

    def __init__(self, interval: float, clock: Callable[[], float]) -> None:
        self._interval = interval
        self._clock = clock
        # key → (when last reported, events since)
        self._last: dict[tuple[str, str], tuple[float, int]] = {}

    def note(self, key: tuple[str, str]) -> tuple[int, float | None] | None:
        """Count one event; ``(events, seconds since the last report)`` if one is due."""
        now = self._clock()
        last = self._last.get(key)
        if last is None:
            if len(self._last) >= 1024:
                # Many addresses: forget those quiet for an interval (their next event
                # is reported as a first one).
                self._last = {k: v for k, v in self._last.items() if now - v[0] < self._interval}
            self._last[key] = (now, 0)
            return 1, None
        reported, pending = last
        if now - reported < self._interval:
            self._last[key] = (reported, pending + 1)
            return None
        self._last[key] = (now, 0)
        return pending + 1, now - reported


class ConnectionGuard:
    """What the connections of one site share: open connections per address, reports."""

    def __init__(
        self,
        limits: ConnectionLimits,
        *,
        clock: Callable[[], float] = time.monotonic,
        report_interval: float = REPORT_INTERVAL,
    ) -> None:
        self.limits = limits
        self._open: dict[str, int] = {}
        self._reports = _Reports(report_interval, clock)
        #: Transports answered and awaiting their close.
        self.lingering: set[asyncio.BaseTransport] = set()
        cap = limits.per_client
        self.refusal = canned_response(
            Overloaded(
                f"This client address has {cap} connections open to this host, the most "
                "it accepts from one address: reuse a connection (keep-alive), or close "
                "one, and retry.",
                details={"max_connections_per_client": cap},
            )
        )
        self.timeout = canned_response(
            RequestTimeout(
                f"No complete request header arrived within {limits.header_timeout:g} s "
                "of connecting; the connection is closed.",
                details={"header_timeout": limits.header_timeout},
            )
        )

    def open_connections(self, address: str) -> int:
        return self._open.get(address, 0)

    def admit(self, address: str) -> bool:
        """Count a new connection from ``address``; False if it is over the cap."""
        count = self._open.get(address, 0)
        cap = self.limits.per_client
        if cap and count >= cap:
            self._report(
                address,
                "cap",
                "refused",
                f": it has {count} open, the most one client address may have "
                "(--max-connections-per-client)",
            )
            return False
        self._open[address] = count + 1
        return True

    def release(self, address: str) -> None:
        count = self._open.get(address, 0) - 1
        if count > 0:
            self._open[address] = count
        else:
            self._open.pop(address, None)

    def header_late(self, address: str) -> None:
        self._report(
            address,
            "header",
            "closed",
            f" that sent no complete request header within {self.limits.header_timeout:g} s "
            "(--header-timeout)",
        )

    def _report(self, address: str, limit: str, verb: str, why: str) -> None:
        due = self._reports.note((address, limit))
        if due is None:
            return
        count, since = due
        if since is None:
            log.warning("%s a connection from %s%s", verb, address, why)
        else:
            log.warning(
                "%s %d connection%s from %s in the %.0f s since the last report%s",
                verb,
                count,
                "" if count == 1 else "s",
                address,
                since,
                why,
            )


class GuardedConnection(asyncio.Protocol):
    """One accepted connection: the limits, then aiohttp's request handler."""

    def __init__(self, factory: Callable[[], asyncio.Protocol], guard: ConnectionGuard) -> None:
        self._factory = factory
        self._guard = guard
        self._inner: asyncio.Protocol | None = None
        self._transport: asyncio.Transport | None = None
        self._address = ""
        self._deadline: asyncio.TimerHandle | None = None
        self._linger: asyncio.TimerHandle | None = None
        self._answered = False
        self._counted = False
        self._seen_request_line = False
        self._tail = b""

    # the protocol ----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport (uvloop's is not registered as an asyncio.Transport).
        transport = cast(asyncio.Transport, transport)
        self._transport = transport
        peer = transport.get_extra_info("peername")
        self._address = str(peer[0]) if isinstance(peer, tuple) and peer else ""
        if not self._guard.admit(self._address):
            self._answer(self._guard.refusal)
            return
        self._counted = True
        loop = asyncio.get_running_loop()
        self._deadline = loop.call_later(self._guard.limits.header_timeout, self._late)
        self._inner = self._factory()
        self._inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self._answered:
            return  # read and dropped until the close
        if self._deadline is not None and self._header_complete(data):
            self._deadline.cancel()
            self._deadline = None
        assert self._inner is not None
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        if self._inner is None or self._answered:
            return None  # close
        return self._inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        for timer in (self._deadline, self._linger):
            if timer is not None:
                timer.cancel()
        self._deadline = self._linger = None
        if self._transport is not None:
            self._guard.lingering.discard(self._transport)
        self._uncount()
        if self._inner is not None:
            self._inner.connection_lost(exc)

    def pause_writing(self) -> None:
        if self._inner is not None:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        if self._inner is not None:
            self._inner.resume_writing()

    # the limits ------------------------------------------------------------------

    def _header_complete(self, data: bytes) -> bool:
        """Whether ``data`` ends the header block: an empty line after the request line.

        A bare LF counts as a line end, as lenient parsers take it; empty lines before
        the request line are skipped, as the parser skips them.
        """
        if not self._seen_request_line:
            data = data.lstrip(b"\r\n")
            if not data:
                return False
            self._seen_request_line = True
        window = self._tail + data
        if b"\n\n" in window or b"\n\r\n" in window:
            self._tail = b""
            return True
        self._tail = window[-2:]
        return False

    def _late(self) -> None:
        self._deadline = None
        self._guard.header_late(self._address)
        self._answer(self._guard.timeout)

    def _uncount(self) -> None:
        if self._counted:
            self._counted = False
            self._guard.release(self._address)

    def _answer(self, response: bytes) -> None:
        transport = self._transport
        assert transport is not None
        self._answered = True
        self._uncount()  # closing: it no longer holds one of its address's connections
        transport.write(response)
        if len(self._guard.lingering) >= _MAX_LINGERING or not transport.can_write_eof():
            transport.close()
            return
        transport.write_eof()
        self._guard.lingering.add(transport)
        self._linger = asyncio.get_running_loop().call_later(_LINGER, transport.close)


class GuardedSite(web.TCPSite):
    """``web.TCPSite`` whose connections go through :class:`GuardedConnection`."""

    def __init__(
        self,
        runner: web.BaseRunner,
        host: str,
        port: int,
        *,
        limits: ConnectionLimits,
        backlog: int = 128,
        reuse_address: bool | None = None,
        reuse_port: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(
            runner,
            host,
            port,
            backlog=backlog,
            reuse_address=reuse_address,
            reuse_port=reuse_port,
        )
        self.guard = ConnectionGuard(limits, clock=clock)
        self._app_runner = runner
        self._listen: dict[str, Any] = {
            "host": host,
            "port": port,
            "backlog": backlog,
            "reuse_address": reuse_address,
            "reuse_port": reuse_port,
        }

    async def start(self) -> None:
        # TCPSite.start, with the protocol factory wrapped; it sets the attributes
        # TCPSite.start sets, which BaseSite.stop and TCPSite.port read.
        await web.BaseSite.start(self)
        handler_factory = self._app_runner.server
        assert handler_factory is not None
        guard = self.guard
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: GuardedConnection(handler_factory, guard), **self._listen
        )
        sockets = self._server.sockets
        self._bound_port = sockets[0].getsockname()[1] if sockets else self._listen["port"]

    async def stop(self) -> None:
        await super().stop()
        # Answered connections aiohttp never saw: its shutdown does not close them.
        for transport in list(self.guard.lingering):
            transport.close()
