"""Slow and greedy clients: they cost themselves, not the others.

The attacks:

- **slowloris**: dozens of connections each send half a request header, then a byte
  now and then, to hold a file descriptor each for ever. They are answered 408
  ``RequestTimeout`` and closed ``--header-timeout`` seconds after they opened, and a
  new client is served all along; one warning line says how many were closed.
- **a dribbled second request**: after one answer on a kept-alive connection, the next
  request comes a byte at a time (or never): closed after ``--keepalive-timeout``.
- **one address opening connection after connection**: beyond
  ``--max-connections-per-client`` the next connection reads a canned 503
  (``Overloaded``, ``Retry-After``, ``Connection: close``) and is closed; the ones it
  holds keep working, and the log has one warning line.
"""

from __future__ import annotations

import json
import selectors
import socket
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import requests

from .conftest import read_to_close, wait_for

if TYPE_CHECKING:
    from conftest import Host

HEALTH = b"GET /v2/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


def _status_and_body(answer: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split(" ")[1]), headers, body


def _read_one_answer(sock: socket.socket, timeout: float = 30.0) -> bytes:
    """One complete answer with a Content-Length, leaving the connection open."""
    sock.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"closed after {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(_status_and_body(head + b"\r\n\r\n")[1]["content-length"])
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, f"closed after {data!r}"
        body += chunk
    return head + b"\r\n\r\n" + body


def _warnings(host: Host, text: str) -> list[str]:
    return [line for line in host.log().splitlines() if " WARNING " in line and text in line]


def test_slowloris_connections_are_closed_and_others_served(
    start_host: Callable[..., Host],
) -> None:
    host = start_host(["--model", "demo", "--header-timeout", "2", "--keepalive-timeout", "120"])
    selector = selectors.DefaultSelector()
    opened: dict[socket.socket, float] = {}
    answers: dict[socket.socket, bytes] = {}
    closed: dict[socket.socket, float] = {}
    for _ in range(40):
        sock = socket.create_connection(("127.0.0.1", host.port))
        sock.sendall(b"GET /v2/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        sock.setblocking(False)
        opened[sock] = time.monotonic()
        answers[sock] = b""
        selector.register(sock, selectors.EVENT_READ)
    served = 0
    deadline = time.monotonic() + 60
    next_byte = time.monotonic()
    try:
        while len(closed) < len(opened):
            assert time.monotonic() < deadline, f"{len(opened) - len(closed)} still open"
            if time.monotonic() >= next_byte:
                for sock in opened:
                    if sock not in closed:
                        try:
                            sock.send(b"a")  # a byte now and then
                        except OSError:
                            pass
                next_byte = time.monotonic() + 0.5
                # A new client, all along.
                assert host.get("/v2/health", timeout=10).status_code == 200
                served += 1
            for key, _ in selector.select(timeout=0.1):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                try:
                    chunk = sock.recv(65536)
                except ConnectionResetError:
                    chunk = b""
                answers[sock] += chunk
                if not chunk:
                    closed[sock] = time.monotonic()
                    selector.unregister(sock)
    finally:
        for sock in opened:
            sock.close()
        selector.close()
    assert served >= 3
    for sock, answer in answers.items():
        status, headers, body = _status_and_body(answer)
        assert status == 408, answer
        assert headers["connection"] == "close"
        error = json.loads(body)
        assert error["error"] == "RequestTimeout" and error["code"] == 408, error
        # Closed by the header deadline, not before it.
        assert closed[sock] - opened[sock] > 1.0
    assert host.get("/v2/health").status_code == 200
    lines = wait_for(
        lambda: _warnings(host, "--header-timeout"), timeout=10, what="the warning line"
    )
    assert len(lines) == 1, lines
    assert "127.0.0.1" in lines[0]


def test_a_dribbled_second_request_and_an_idle_connection_are_closed(
    start_host: Callable[..., Host],
) -> None:
    host = start_host(["--model", "demo", "--header-timeout", "60", "--keepalive-timeout", "2"])
    dribbling = socket.create_connection(("127.0.0.1", host.port))
    idle = socket.create_connection(("127.0.0.1", host.port))
    try:
        for sock in (dribbling, idle):
            sock.sendall(HEALTH)
            assert _status_and_body(_read_one_answer(sock))[0] == 200
        began = time.monotonic()
        second = b"GET /v2/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "
        dribbling.setblocking(False)
        gone = False
        for byte in second * 10:
            try:
                dribbling.send(bytes([byte]))
                if dribbling.recv(1024) == b"":
                    gone = True
                    break
            except BlockingIOError:
                pass
            except OSError:  # reset: closed
                gone = True
                break
            assert time.monotonic() - began < 60, "the dribbling connection is still open"
            time.sleep(0.2)
        assert gone
        assert read_to_close(idle, timeout=30) == b""
    finally:
        dribbling.close()
        idle.close()
    assert host.get("/v2/health").status_code == 200


def _hold(port: int) -> socket.socket:
    """A kept-alive connection that was served once (retrying while over the cap)."""
    deadline = time.monotonic() + 30
    while True:
        sock = socket.create_connection(("127.0.0.1", port))
        sock.sendall(HEALTH)
        answer = _read_one_answer(sock)
        if _status_and_body(answer)[0] == 200:
            return sock
        # A connection of the readiness checks was not released yet.
        sock.close()
        assert time.monotonic() < deadline, answer
        time.sleep(0.1)


def test_connections_beyond_the_per_client_cap_are_refused(
    start_host: Callable[..., Host],
) -> None:
    host = start_host(["--model", "demo", "--max-connections-per-client", "4"])
    held = [_hold(host.port) for _ in range(4)]
    try:
        for _ in range(3):
            with socket.create_connection(("127.0.0.1", host.port)) as extra:
                extra.sendall(HEALTH)
                answer = read_to_close(extra, timeout=30)
            status, headers, body = _status_and_body(answer)
            assert status == 503, answer
            assert headers["connection"] == "close"
            assert headers["retry-after"] == "1"
            assert headers["content-type"].startswith("application/json")
            error = json.loads(body)
            assert error["status"] == "error" and error["code"] == 503, error
            assert error["error"] == "Overloaded", error
            assert error["details"] == {"max_connections_per_client": 4}
        # The connections it holds keep working.
        for sock in held:
            sock.sendall(HEALTH)
            assert _status_and_body(_read_one_answer(sock))[0] == 200
        lines = wait_for(
            lambda: _warnings(host, "--max-connections-per-client"),
            timeout=10,
            what="the warning line",
        )
        assert len(lines) == 1, lines
        assert "refused a connection from 127.0.0.1" in lines[0]
        # One closed: a new connection is served again.
        held.pop().close()
        held.append(_hold(host.port))
    finally:
        for sock in held:
            sock.close()
    assert requests.get(host.url + "/v2/health", timeout=30).status_code == 200
