"""DNS rebinding: a page on ``http://rebind.attacker.example:PORT`` reads the host.

The attack: the attacker's name first resolves to their server, which serves a page;
then it is re-pointed at 127.0.0.1. The page's requests now reach the host from the
user's browser as the page's *own* origin — no CORS, no cross-site headers — and it can
read every answer. What it cannot change is the ``Host`` header, which carries the
attacker's name. So every route (documentation, health and static assets included)
must answer 421 ``HostNotAllowed`` to it, while the host's own names keep working and
links echo only those.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest
import requests

from .conftest import error, outbound_ip, raw_exchange

if TYPE_CHECKING:
    from conftest import Host

REBIND = "rebind.attacker.example"
ROUTES = [
    ("GET", "/"),
    ("GET", "/v2/"),
    ("GET", "/v2/health"),
    ("GET", "/v2/openapi.json"),
    ("GET", "/swagger.json"),
    ("GET", "/api"),
    ("GET", "/ui"),
    ("GET", "/api/static/swagger-ui.css"),
    ("GET", "/v2/models/"),
    ("GET", "/v2/models/iris/"),
    ("GET", "/v2/models/iris/versions/"),
    ("GET", "/v2/online/"),
    ("GET", "/no/such/route"),
    ("POST", "/v2/models/iris/predict/"),
    ("POST", "/v2/online/"),
]


def _with_host(host: Host, method: str, path: str, name: str) -> requests.Response:
    return requests.request(
        method, host.url + path, headers={"Host": name}, timeout=30, allow_redirects=False
    )


def test_a_rebound_name_is_refused_on_every_route(loopback_host: Host) -> None:
    for name in (f"{REBIND}:{loopback_host.port}", REBIND, f"{REBIND}.:{loopback_host.port}"):
        for method, path in ROUTES:
            refused = _with_host(loopback_host, method, path, name)
            body = error(refused, 421, "HostNotAllowed")
            assert f"--allowed-host {REBIND}" in body["message"], body
            assert REBIND + "/" not in refused.text  # no link was built with the name
    # Names that are not names at all (they would end up in links otherwise).
    for name in ("evil.example/x", "a@b", "[::1", "x:80:80", "exa mple"):
        error(_with_host(loopback_host, "GET", "/v2/", name), 421, "HostNotAllowed")
    assert loopback_host.get("/v2/health").status_code == 200


@pytest.mark.parametrize(
    "name",
    ["localhost", "127.0.0.1", "[::1]", "127.0.0.2", "app.localhost", "models.example.org"],
)
def test_the_host_answers_to_its_own_names_and_links_echo_them(
    loopback_host: Host, name: str
) -> None:
    for with_port in (f"{name}:{loopback_host.port}", name):
        for method, path in ROUTES:
            answer = _with_host(loopback_host, method, path, with_port)
            assert answer.status_code != 421, (with_port, path, answer.text)
        links = _with_host(loopback_host, "GET", "/v2/", with_port).json()["links"]
        assert links, links
        for link in links:
            assert link["href"].startswith(f"http://{with_port}/"), link


def test_a_request_without_host_header_is_no_browser_s(loopback_host: Host) -> None:
    answer = raw_exchange(loopback_host.port, b"GET /v2/ HTTP/1.0\r\n\r\n")
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.0 200") or head.startswith(b"HTTP/1.1 200"), answer
    # Links fall back to the address the request came in on.
    assert b'"href": "http://127.0.0.1' in body, body


def test_two_host_headers_are_refused(loopback_host: Host) -> None:
    request = (
        f"GET /v2/ HTTP/1.1\r\nHost: 127.0.0.1:{loopback_host.port}\r\n"
        f"Host: {REBIND}\r\nConnection: close\r\n\r\n"
    ).encode()
    answer = raw_exchange(loopback_host.port, request)
    assert answer.split(b"\r\n", 1)[0].split(b" ")[1] in (b"400", b"421"), answer


def test_on_a_wildcard_address_the_machine_s_names_are_allowed(
    start_host: Callable[..., Host],
) -> None:
    ip = outbound_ip()
    if ip is None:
        pytest.skip("this machine has no address but loopback")
    host = start_host(["--model", "demo", "--listen-ip", "0.0.0.0", "--insecure"])
    port = host.port
    for name in (ip, socket.gethostname(), "localhost", "127.0.0.1"):
        answer = requests.get(
            f"http://{ip}:{port}/v2/", headers={"Host": f"{name}:{port}"}, timeout=30
        )
        assert answer.status_code == 200, (name, answer.text)
        assert answer.json()["links"][0]["href"].startswith(f"http://{name}:{port}/")
    refused = requests.get(
        f"http://{ip}:{port}/v2/health", headers={"Host": f"{REBIND}:{port}"}, timeout=30
    )
    error(refused, 421, "HostNotAllowed")


def test_an_allowed_star_accepts_any_name(start_host: Callable[..., Host]) -> None:
    host = start_host(["--model", "demo", "--allowed-host", "*"])
    answer = _with_host(host, "GET", "/v2/", f"{REBIND}:{host.port}")
    assert answer.status_code == 200
    # Still only names: a malformed Host never reaches a link.
    error(_with_host(host, "GET", "/v2/", "evil.example/x"), 421, "HostNotAllowed")


def test_an_allowed_wildcard_domain_accepts_its_names_only(
    start_host: Callable[..., Host],
) -> None:
    host = start_host(["--model", "demo", "--allowed-host", "*.models.example.org"])
    assert _with_host(host, "GET", "/v2/", "a.models.example.org").status_code == 200
    assert _with_host(host, "GET", "/v2/", "b.a.models.example.org").status_code == 200
    for name in ("models.example.org", "evilmodels.example.org", "models.example.org.evil"):
        error(_with_host(host, "GET", "/v2/", name), 421, "HostNotAllowed")
