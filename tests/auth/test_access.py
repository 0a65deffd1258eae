"""Access tokens on real hosts: each scope, no token, revocation, restarts.

Tokens are made with the ``deepaas-host token`` command against the host's data
directory, before the host starts or while it runs; a running host picks changes
up within its refresh interval (2 s), so those checks wait with a deadline.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import requests
from process.conftest import wait_until

from .conftest import bearer, create_token, token_cli

if TYPE_CHECKING:
    from conftest import Host

PREDICT = "/v2/models/demo/predict/"
TRAIN = "/v2/models/demo/train/"
REFRESH_DEADLINE = 15.0
OPEN = ["/", "/v2/", "/v2/health", "/v2/openapi.json", "/swagger.json", "/api"]


def error(response: requests.Response, status: int, name: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["status"] == "error"
    assert body["code"] == status
    assert body["error"] == name
    assert body["request_id"] == response.headers["X-Request-ID"]
    return body


def unauthorized(response: requests.Response) -> dict[str, Any]:
    body = error(response, 401, "AuthenticationError")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    return body


def test_a_loopback_host_without_tokens_needs_none_until_one_is_created(
    start_host: Callable[..., Host],
) -> None:
    host = start_host(["--model", "demo"])
    assert host.get("/v2/models/").status_code == 200
    assert host.post(PREDICT, data={"label": "dog"}).status_code == 200
    assert host.post(TRAIN, data={"epochs": 1, "duration": 0}).status_code == 202

    # The first token switches authentication on while the host runs.
    created = create_token(host.data_dir, "predict", "first")
    token = created["token"]
    wait_until(
        lambda: host.get("/v2/models/").status_code == 401,
        timeout=REFRESH_DEADLINE,
        what="authentication to switch on",
    )
    first = host.get("/v2/models/")
    body = unauthorized(first)
    assert "needs an access token" in body["message"]
    assert body["details"] == {"required_scope": "predict"}
    assert first.headers["WWW-Authenticate"] == "Bearer"
    unauthorized(host.post(PREDICT, data={"label": "dog"}))
    for path in OPEN:
        assert host.get(path).status_code == 200, path
    page = host.get("/api").text
    for asset in re.findall(r'(?:href|src)="([^"]+/api/static/[^"]+)"', page):
        assert requests.get(f"http://127.0.0.1:{host.port}{asset}", timeout=10).ok, asset

    assert host.get("/v2/models/", headers=bearer(token)).status_code == 200
    answer = host.post(PREDICT, data={"label": "cat"}, headers=bearer(token))
    assert answer.json()["predictions"]["label"] == "cat"

    # Revoked: refused within the refresh interval.
    revoked = token_cli(host.data_dir, "revoke", "first")
    assert revoked.returncode == 0, revoked.stderr
    assert revoked.stdout.startswith(f"token {created['id']} ('first') revoked at ")
    wait_until(
        lambda: host.get("/v2/models/", headers=bearer(token)).status_code == 401,
        timeout=REFRESH_DEADLINE,
        what="the revoked token to be refused",
    )
    refused = host.get("/v2/models/", headers=bearer(token))
    assert unauthorized(refused)["message"] == "The access token is unknown or revoked."
    assert refused.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
    # Revoking the last token locks the host; it does not open it again.
    unauthorized(host.get("/v2/models/"))
    assert host.get("/v2/health").status_code == 200


def test_each_scope_and_none(start_host: Callable[..., Host], tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    predict = create_token(data_dir, "predict", "reader")["token"]
    manage = create_token(data_dir, "manage", "ops")["token"]
    host = start_host(["--model", "demo"], data_dir=data_dir)

    # No token, or one the host does not know.
    unauthorized(host.get("/v2/models/"))
    unauthorized(host.get("/v2/models/demo/"))
    unauthorized(host.post(PREDICT))
    unauthorized(host.post(TRAIN, data={"epochs": 1}))
    unauthorized(host.get("/v2/nowhere"))
    unauthorized(host.post("/v2/models/nope/predict/"))
    unauthorized(host.get("/v2/models/", headers=bearer(predict + "x")))
    unauthorized(host.get("/v2/models/", headers={"Authorization": f"Basic {predict}"}))
    assert host.get("/v2/health").json()["ready"] is True

    # predict: read and predict, but not train.
    for headers in (bearer(predict), {"standAloneToken": predict}):
        models = host.get("/v2/models/", headers=headers)
        assert [m["id"] for m in models.json()["models"]] == ["demo"]
        assert host.get("/v2/models/demo/", headers=headers).status_code == 200
        answer = host.post(PREDICT, data={"label": "dog"}, headers=headers)
        assert answer.json()["predictions"]["label"] == "dog"
        assert host.get(TRAIN, headers=headers).json() == []
        response = host.post(TRAIN, data={"epochs": 1}, headers=headers)
        denied = error(response, 403, "PermissionDenied")
        assert "'manage'" in denied["message"]
        assert denied["details"] == {"required_scope": "manage", "token_scope": "predict"}
        assert "WWW-Authenticate" not in response.headers
        versions = "/v2/models/demo/versions/"
        assert host.get(versions, headers=headers).status_code == 200
        for method, path in [
            ("POST", versions),
            ("DELETE", f"{versions}v1"),
            ("POST", f"{versions}v1/load"),
            ("POST", f"{versions}v1/default"),
        ]:
            refused = requests.request(method, host.url + path, headers=headers, timeout=30)
            error(refused, 403, "PermissionDenied")
        # A token of any scope sees the 404s of what is not there.
        error(host.get("/v2/nowhere", headers=headers), 404, "NotFound")
        error(host.post("/v2/models/nope/predict/", headers=headers), 404, "ModelNotFound")

    # manage: everything, with either header.
    started = host.post(TRAIN, data={"epochs": 30, "duration": 30}, headers=bearer(manage))
    assert started.status_code == 202, started.text
    job = started.json()["id"]
    got = host.get(f"{TRAIN}{job}", headers=bearer(predict))
    assert got.json()["id"] == job
    error(host.delete(f"{TRAIN}{job}", headers=bearer(predict)), 403, "PermissionDenied")
    cancelled = host.delete(f"{TRAIN}{job}", headers={"standAloneToken": manage})
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    assert host.post(PREDICT, headers={"standAloneToken": manage}).status_code == 200

    # Tokens live in the data directory: a new host honours them, and their last use
    # was recorded (on shut-down at the latest).
    assert host.stop() == 0
    again = start_host(["--model", "demo"], data_dir=data_dir)
    unauthorized(again.get("/v2/models/"))
    assert again.get("/v2/models/", headers=bearer(predict)).status_code == 200
    error(again.post(TRAIN, headers=bearer(predict)), 403, "PermissionDenied")
    assert again.post(TRAIN, data={"epochs": 1, "duration": 0}, headers=bearer(manage)).ok
    assert again.stop() == 0
    listed = token_cli(data_dir, "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert {t["name"]: t["last_used"] is not None for t in json.loads(listed.stdout)} == {
        "reader": True,
        "ops": True,
    }

    # The database holds hashes only.
    with sqlite3.connect(data_dir / "deepaas-host.db") as db:
        tables = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        assert "tokens" in tables
        for table in tables:
            for row in db.execute(f'SELECT * FROM "{table}"'):
                for value in row:
                    assert predict not in str(value)
                    assert manage not in str(value)
    for path in data_dir.rglob("*"):
        if path.is_file():
            content = path.read_bytes()
            assert predict.encode() not in content, path
            assert manage.encode() not in content, path
