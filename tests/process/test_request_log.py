"""One access-log line per request, as text or as JSON."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .conftest import wait_until

if TYPE_CHECKING:
    from conftest import Host

PREDICT = "/v2/models/demo/predict/"


def lines_with(host: Host, text: str) -> list[str]:
    return [line for line in host.log().splitlines() if text in line]


def one_line_with(host: Host, text: str) -> str:
    found = wait_until(lambda: lines_with(host, text), timeout=10, what=f"a log line with {text}")
    assert len(found) == 1, found
    return found[0]


def test_text_lines_carry_id_path_status_and_latency(start_host: Callable[..., Host]) -> None:
    host = start_host(["--model", "demo"])
    calls = [
        ("POST", PREDICT, {"label": "dog"}, 200),
        ("POST", PREDICT, {"label": "horse"}, 422),
        ("GET", "/v2/models/nope/", None, 404),
        ("GET", "/v2/health", None, 200),
    ]
    for method, path, data, status in calls:
        request_id = f"req-{uuid.uuid4().hex}"
        response = (host.post if method == "POST" else host.get)(
            path, data=data, headers={"X-Request-ID": request_id}
        )
        assert response.status_code == status
        assert response.headers["X-Request-ID"] == request_id
        line = one_line_with(host, request_id)
        assert re.search(rf" {method} {re.escape(path)} {status} \d+\.\d+ms ", line), line
        assert f"request_id={request_id}" in line


def test_every_request_gets_its_own_id(start_host: Callable[..., Host]) -> None:
    host = start_host(["--model", "demo"])
    ids = {host.post(PREDICT).headers["X-Request-ID"] for _ in range(3)}
    assert len(ids) == 3
    for request_id in ids:
        assert "model=demo" in one_line_with(host, request_id)


def test_json_lines(start_host: Callable[..., Host]) -> None:
    host = start_host(["--model", "demo", "--log-format", "json"])
    request_id = f"req-{uuid.uuid4().hex}"
    assert host.post(PREDICT, data={"count": 2}, headers={"X-Request-ID": request_id}).ok
    bad = host.post(PREDICT, data={"count": 0})
    assert bad.status_code == 422

    def entries() -> list[dict[str, Any]]:
        return [json.loads(line) for line in host.log().splitlines() if line.strip()]

    wait_until(
        lambda: any(e.get("request_id") == bad.headers["X-Request-ID"] for e in entries()),
        timeout=10,
        what="the access log lines",
    )
    logged = entries()  # every line of the log is one JSON object
    (ok,) = [e for e in logged if e.get("request_id") == request_id]
    assert ok["model"] == "demo"
    assert ok["status"] == 200
    assert ok["route"] == PREDICT
    assert isinstance(ok["latency_ms"], int | float)
    assert ok["latency_ms"] > 0
    assert ok["logger"] == "deepaas_host.access"
    (failed,) = [e for e in logged if e.get("request_id") == bad.headers["X-Request-ID"]]
    assert failed["status"] == 422
    assert failed["model"] == "demo"
    assert any(e["message"].startswith("ready in") for e in logged)
