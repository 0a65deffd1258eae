"""Forging log records through what a caller controls.

The attack: the request path is percent-decoded before it is logged, so
``GET /v2/%0A2026-01-01%2000:00:00%20INFO%20forged`` would write a second line that
reads like a record of its own; ``%1B[2J`` would clear the operator's terminal; a
model name in the path lands in ``model=``, an ``X-Request-ID`` in ``request_id=``.

Expected: one record per request, its caller-controlled text escaped (``\\n``,
``\\x1b``, ``\\u2028``); every line of the log is a record or an indented
continuation (a traceback); an ``X-Request-ID`` outside ``[A-Za-z0-9._:@/+=-]{1,128}``
is replaced by a fresh one. The JSON log stays one object per line.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import TYPE_CHECKING

import requests

from .conftest import raw_exchange, wait_for

if TYPE_CHECKING:
    from conftest import Host

FORGED = b"/v2/%0A2026-01-01%2000:00:00%20INFO%20forged"
RECORD = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [A-Z]+ [\w.]+: ")


def _get(host: Host, target: bytes, *headers: bytes) -> bytes:
    lines = [b"GET " + target + b" HTTP/1.1", f"Host: 127.0.0.1:{host.port}".encode()]
    lines += [*headers, b"Connection: close"]
    return raw_exchange(host.port, b"\r\n".join(lines) + b"\r\n\r\n")


def _request_id(answer: bytes) -> str:
    match = re.search(rb"\r\nX-Request-ID: ([^\r\n]*)\r\n", answer, re.IGNORECASE)
    assert match, answer
    return match.group(1).decode()


def test_a_forged_path_stays_one_escaped_record(start_host: Callable[..., Host]) -> None:
    host = start_host(["--model", "demo"])
    answers = [
        _get(host, FORGED),
        _get(host, b"/v2/%1B%5B2J%1B%5B31mred"),
        _get(host, b"/v2/line%E2%80%A8separator%0D%0Acarriage"),
        _get(host, b"/v2/models/%0Aforged%20model/predict/"),
    ]
    for answer in answers:
        assert answer.startswith(b"HTTP/1.1 404"), answer
    # A multi-line record of the host's own: the traceback of a plugin that raised.
    assert host.post("/v2/models/demo/predict/", params={"fail": "raise"}).status_code == 500
    ids = [_request_id(a) for a in answers]
    wait_for(lambda: all(i in host.log() for i in ids), timeout=10, what="the access lines")

    raw = host.log_path.read_bytes() if host.log_path else b""
    assert b"\x1b" not in raw and b"\r" not in raw and "\u2028".encode() not in raw
    lines = raw.decode().split("\n")
    for line in lines:
        assert not line or RECORD.match(line) or line.startswith("    "), line
    assert not any(line.startswith("2026-01-01 00:00:00") for line in lines)
    forged = [line for line in lines if "forged" in line]
    assert len(forged) == 2, forged
    assert " GET /v2/\\n2026-01-01 00:00:00 INFO forged 404 " in forged[0], forged
    assert f"request_id={ids[0]}" in forged[0]
    assert "model=\\nforged model" in forged[1], forged
    assert any(" GET /v2/\\x1b[2J\\x1b[31mred 404 " in line for line in lines)
    assert any(" GET /v2/line\\u2028separator\\r\\ncarriage 404 " in line for line in lines)
    assert any(line.startswith("    Traceback (most recent call last):") for line in lines)
    assert host.get("/v2/health").status_code == 200


def test_unusable_request_ids_are_replaced(start_host: Callable[..., Host]) -> None:
    host = start_host(["--model", "demo"])
    kept = "trace:ab/12+3=4@node.x_y-Z"
    assert _request_id(_get(host, b"/v2/", f"X-Request-ID: {kept}".encode())) == kept
    for bad in (
        b"id with spaces",
        b"id\ttab",  # (control characters the HTTP parser refuses itself: 400)
        b"x" * 129,
        b'id"quote',
        b"id\xc3\xa9",
        b"",
    ):
        replaced = _request_id(_get(host, b"/v2/", b"X-Request-ID: " + bad))
        assert re.fullmatch(r"[0-9a-f]{32}", replaced), (bad, replaced)


def test_the_json_log_stays_one_object_per_line(start_host: Callable[..., Host]) -> None:
    host = start_host(["--model", "demo", "--log-format", "json"])
    request_id = _request_id(_get(host, FORGED))
    assert requests.get(host.url + "/v2/health", timeout=30).status_code == 200

    def entries() -> list[dict[str, object]]:
        return [json.loads(line) for line in host.log().splitlines() if line.strip()]

    wait_for(
        lambda: any(e.get("request_id") == request_id for e in entries()),
        timeout=10,
        what="the access line",
    )
    (entry,) = [e for e in entries() if e.get("request_id") == request_id]
    assert str(entry["message"]).startswith("GET /v2/\\n2026-01-01 00:00:00 INFO forged 404 ")
