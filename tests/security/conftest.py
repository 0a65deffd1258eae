"""What the attacks of these tests are made of.

- a pickle that creates a marker file when it is unpickled (the proof that code ran);
- requests shaped exactly as Chromium sends them for a page of another site: the
  ``multipart/form-data`` body with its ``----WebKitFormBoundary…`` boundary, and the
  ``Origin`` / ``Sec-Fetch-*`` headers a page cannot change;
- raw HTTP over a socket, for what ``requests`` will not send (no ``Host`` header,
  half a request header, a byte now and then);
- the machine's address that is not loopback, to serve "beyond this machine".
"""

from __future__ import annotations

import pickle
import secrets
import socket
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import requests
from conftest import Host, launch

CHROME_UA = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36"
)


class Marker:
    """Pickles into ``open(path, "w")``: unpickling it creates ``path``."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (self.path, "w"))


def marker_pickle(path: Path) -> bytes:
    return pickle.dumps(Marker(path))


def webkit_multipart(
    fields: Mapping[str, str], files: Mapping[str, tuple[str, bytes]]
) -> tuple[str, bytes]:
    """A ``FormData`` body as Chromium encodes it: its content type and its bytes."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    boundary = "----WebKitFormBoundary" + "".join(secrets.choice(alphabet) for _ in range(16))
    parts: list[bytes] = []
    for name, (filename, content) in files.items():
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
            f'filename="{filename}"\r\nContent-Type: application/octet-stream\r\n\r\n'.encode()
            + content
            + b"\r\n"
        )
    for name, value in fields.items():
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
            f"{value}\r\n".encode()
        )
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    return f"multipart/form-data; boundary={boundary}", body


def chromium_headers(
    content_type: str, *, origin: str, site: str, mode: str, referer: str | None = None
) -> dict[str, str]:
    """The headers of a Chromium ``POST`` sent for a page of ``origin``, in its order.

    ``mode`` is ``no-cors`` (``fetch(url, {mode: "no-cors", body: formData})``) or
    ``navigate`` (a ``<form method=post enctype=multipart/form-data>`` submitted by
    script); ``site`` is what the browser computes (``cross-site``, ``same-site``,
    ``same-origin``).
    """
    navigate = mode == "navigate"
    headers = {
        "Connection": "keep-alive",
        "Cache-Control": "max-age=0" if navigate else "no-cache",
        "sec-ch-ua": '"Chromium";v="124", "Not-A.Brand";v="99"',
        "sec-ch-ua-mobile": "?0",
        "sec-ch-ua-platform": '"Linux"',
        "Origin": origin,
        "Content-Type": content_type,
        "Upgrade-Insecure-Requests": "1",
        "User-Agent": CHROME_UA,
        "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
        if navigate
        else "*/*",
        "Sec-Fetch-Site": site,
        "Sec-Fetch-Mode": mode,
        "Sec-Fetch-Dest": "document" if navigate else "empty",
        "Referer": referer or origin + "/",
        "Accept-Encoding": "gzip, deflate, br, zstd",
        "Accept-Language": "en-US,en;q=0.9",
    }
    if not navigate:
        del headers["Upgrade-Insecure-Requests"]
    return headers


def error(response: requests.Response, status: int, name: str) -> dict[str, Any]:
    """The host's one error shape, with the status and error name expected."""
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json"), response.headers
    body: dict[str, Any] = response.json()
    assert body["status"] == "error", body
    assert body["code"] == status, body
    assert body["error"] == name, body
    return body


def raw_exchange(port: int, request: bytes, *, timeout: float = 30.0) -> bytes:
    """Send ``request`` as is and read the answer until the host closes the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(request)
        return read_to_close(sock, timeout=timeout)


def read_to_close(sock: socket.socket, *, timeout: float = 30.0) -> bytes:
    """Everything ``sock`` receives until the peer closes it (or ``timeout`` passes)."""
    deadline = time.monotonic() + timeout
    data = b""
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            break
        except ConnectionResetError:
            break
        if not chunk:
            return data
        data += chunk
    raise AssertionError(f"the host kept the connection open for {timeout}s; got {data!r}")


def outbound_ip() -> str | None:
    """This machine's address towards the network (no packet is sent), unless loopback."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))
        except OSError:
            return None
        ip: str = s.getsockname()[0]
    return None if ip.startswith("127.") else ip


def wait_for(predicate: Callable[[], Any], *, timeout: float = 30.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")
        time.sleep(0.05)


@pytest.fixture(scope="module")
def loopback_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Host]:
    """An open loopback host (no token ever): iris with versions, and online models."""
    tmp = tmp_path_factory.mktemp("loopback")
    args = ["--model", "iris", "--model", "running-mean", "--workers", "1", "--no-train"]
    args += ["--allowed-host", "models.example.org"]
    host = launch(tmp, args, env={"DEEPAAS_HOST_INSECURE": "false"})
    yield host
    host.stop()
