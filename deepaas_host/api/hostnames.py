"""The names the ``Host`` header may carry: a guard against DNS rebinding.

A page on ``http://rebind.attacker.example:5000`` whose name the attacker then points
at 127.0.0.1 talks to this host from the user's own browser as its *own* origin: it
may send any request and read every answer. What gives it away is the ``Host``
header, which carries the page's name. So every route answers only requests that
name this host:

- loopback names: ``localhost``, ``*.localhost``, 127.0.0.0/8, ``::1``;
- the listen address, when it is not a wildcard;
- on a wildcard address (``0.0.0.0``, ``::``), the machine's host name, its FQDN and
  the addresses of its interfaces, found once when the app is created;
- each ``allowed_hosts`` name (``--allowed-host``): a name, ``*.example.org`` for the
  names under ``example.org``, or ``*`` for any name.

The port is ignored. A request with no ``Host`` header at all is not a browser's
(HTTP/1.0 tools) and is let through; anything else is answered 421
``HostNotAllowed``. Links in answers are built from the ``Host`` header, so they can
only ever name an allowed name.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import psutil
from aiohttp import web

from deepaas_host.errors import HostNotAllowed
from deepaas_host.settings import Settings, SettingsError

__all__ = [
    "HOST_NAMES",
    "HostNames",
    "is_loopback_name",
    "machine_names",
    "require_own_host",
    "split_host",
]

# Letters, digits, dots, hyphens and (docker, compose) underscores: a name a browser
# can send; anything else could never match and must never reach a link.
_NAME = re.compile(r"[a-z0-9_](?:[a-z0-9_.-]{0,251}[a-z0-9_])?")
_PORT = re.compile(r"[0-9]{0,5}")
_WILDCARDS = frozenset({"", "0.0.0.0", "::"})
_SEEN = 1024


def split_host(value: str) -> str | None:
    """The name of a ``Host`` value without its port, normalised; None if malformed.

    Names are lower-cased without a final dot; IP addresses take their compressed
    form (``[0:0::1]:80`` → ``::1``).
    """
    value = value.strip()
    if value.startswith("["):
        name, bracket, port = value[1:].partition("]")
        if not bracket or (port and not (port[0] == ":" and _PORT.fullmatch(port[1:]))):
            return None
        try:
            return ipaddress.IPv6Address(name).compressed
        except ValueError:
            return None
    if value.count(":") > 1:  # an IPv6 address without brackets (never from a browser)
        try:
            return ipaddress.IPv6Address(value).compressed
        except ValueError:
            return None
    name, _, port = value.partition(":")
    if not _PORT.fullmatch(port):
        return None
    return _normalise(name)


def _normalise(name: str) -> str | None:
    name = name.strip().lower()
    if name.endswith("."):
        name = name[:-1]
    try:
        return ipaddress.ip_address(name).compressed
    except ValueError:
        pass
    return name if _NAME.fullmatch(name) else None


def is_loopback_name(name: str) -> bool:
    """``localhost``, a name under ``.localhost`` (RFC 6761), or a loopback address."""
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def _is_wildcard(listen_ip: str) -> bool:
    if listen_ip.strip() in _WILDCARDS:
        return True
    try:
        return ipaddress.ip_address(listen_ip.strip().strip("[]")).is_unspecified
    except ValueError:
        return False


def machine_names() -> list[str]:
    """This machine's host name, FQDN and interface addresses (link-local zones dropped)."""
    names = [socket.gethostname(), socket.getfqdn()]
    for addresses in psutil.net_if_addrs().values():
        for address in addresses:
            if address.family in (socket.AF_INET, socket.AF_INET6):
                names.append(address.address.partition("%")[0])
    return names


@dataclass(frozen=True)
class HostNames:
    """The names this host answers to, besides the loopback names it always accepts."""

    names: frozenset[str] = frozenset()
    #: ``.example.org`` for an allowed ``*.example.org``.
    suffixes: tuple[str, ...] = ()
    any_name: bool = False
    # Host values seen and allowed: parsing one costs microseconds on every request,
    # and a host is called by few names. Bounded, so many names cannot grow it.
    _seen: set[str] = field(default_factory=set, compare=False, repr=False)

    @classmethod
    def for_settings(
        cls, settings: Settings, *, machine: Callable[[], Iterable[str]] = machine_names
    ) -> HostNames:
        """The names of a host run with ``settings``; ``machine`` is asked on a wildcard.

        Raises :class:`SettingsError` for an allowed host that is not a host name.
        """
        names: set[str] = set()
        suffixes: list[str] = []
        any_name = False
        for pattern in settings.allowed_hosts:
            pattern = pattern.strip().lower()
            if pattern == "*":
                any_name = True
                continue
            wildcard = pattern.startswith("*.")
            name = _normalise(pattern[2:] if wildcard else pattern)
            if name is None:
                raise SettingsError(f"allowed host {pattern!r} is not a host name, *.domain or *")
            if wildcard:
                suffixes.append("." + name)
            else:
                names.add(name)
        found = machine() if _is_wildcard(settings.listen_ip) else [settings.listen_ip]
        names.update(n for n in map(_normalise, found) if n is not None)
        return cls(frozenset(names), tuple(suffixes), any_name)

    def allows(self, name: str) -> bool:
        """Whether the normalised ``name`` (see :func:`split_host`) is one of this host's."""
        return (
            self.any_name
            or is_loopback_name(name)
            or name in self.names
            or any(name.endswith(s) for s in self.suffixes)
        )

    def check(self, host: str | None) -> None:
        """Raise :class:`HostNotAllowed` unless the ``Host`` value ``host`` may be served."""
        if host is None or host in self._seen:
            return
        name = split_host(host)
        if name is not None and self.allows(name):
            if len(self._seen) < _SEEN:
                self._seen.add(host)
            return
        shown = host if len(host) <= 100 else host[:100] + "…"
        if name is None:
            raise HostNotAllowed(
                f"The Host header {shown!r} is not a host name.", details={"host": shown}
            )
        raise HostNotAllowed(
            f"This host does not answer to the name {name!r} (Host header {shown!r}). "
            f"If it is a name of this host, allow it: deepaas-host run --allowed-host {name} "
            "(repeatable; allowed_hosts in the settings file, or "
            "DEEPAAS_HOST_ALLOWED_HOSTS=name1,name2).",
            details={"host": shown},
        )


HOST_NAMES = web.AppKey("host_names", HostNames)


def require_own_host(request: web.Request) -> None:
    """Raise 421 ``HostNotAllowed`` unless the ``Host`` header names this host (or is absent)."""
    hosts = request.headers.getall("Host", ())
    if len(hosts) > 1:
        raise HostNotAllowed("The request has more than one Host header.")
    request.app[HOST_NAMES].check(hosts[0] if hosts else None)
