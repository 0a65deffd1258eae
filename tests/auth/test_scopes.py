"""The rule that maps a route to the scope it needs, and the token headers."""

from __future__ import annotations

from typing import Any

import pytest
from multidict import CIMultiDict

from deepaas_host.api.auth import document_security, token_of
from deepaas_host.auth import OPEN_ROUTES, Scope, is_loopback, required_scope

MODEL = "/v2/models/demo"
VERSIONS = "/v2/models/{name}/versions"


@pytest.mark.parametrize("route", sorted(OPEN_ROUTES))
def test_docs_health_and_roots_are_open_to_get(route: str) -> None:
    assert required_scope("GET", route) is None
    assert required_scope("head", route) is None
    assert required_scope("POST", route) is Scope.MANAGE


@pytest.mark.parametrize(
    ("method", "route"),
    [
        ("GET", "/v2/models/"),
        ("GET", f"{MODEL}/"),
        ("GET", f"{MODEL}/train/"),
        ("GET", f"{MODEL}/train/{{job_id}}"),
        ("GET", f"{VERSIONS}/"),
        ("GET", f"{VERSIONS}/{{version}}/download"),
        ("HEAD", f"{VERSIONS}/{{version}}/download"),
        ("POST", f"{MODEL}/predict/"),
        ("POST", "/v2/models/{name}/predict"),
        ("POST", f"{MODEL}/learn/"),
        ("POST", f"{MODEL}/label/"),
        ("POST", f"{VERSIONS}/{{version}}/predict/"),
        # No route matched, or the catch-all that only answers 404/405:
        ("GET", None),
        ("DELETE", None),
        ("POST", "/v2/models/{name}/{rest}"),
    ],
)
def test_reading_and_predicting_need_predict(method: str, route: str | None) -> None:
    assert required_scope(method, route) is Scope.PREDICT


@pytest.mark.parametrize(
    ("method", "route"),
    [
        ("POST", f"{MODEL}/train/"),
        ("DELETE", f"{MODEL}/train/{{job_id}}"),
        ("POST", f"{VERSIONS}/"),
        ("DELETE", f"{VERSIONS}/{{version}}"),
        ("POST", f"{VERSIONS}/{{version}}/load"),
        ("POST", f"{VERSIONS}/{{version}}/unload"),
        ("POST", f"{VERSIONS}/{{version}}/default"),
        ("PUT", f"{MODEL}/predict/"),
        ("DELETE", f"{MODEL}/predict/"),
        # A model named "predict" does not make its own routes predict routes.
        ("POST", "/v2/models/predict/"),
        ("POST", "/v2/models/predict"),
        ("POST", "/predict/"),
        ("OPTIONS", f"{MODEL}/predict/"),
    ],
)
def test_everything_else_needs_manage(method: str, route: str) -> None:
    assert required_scope(method, route) is Scope.MANAGE


def test_manage_includes_predict() -> None:
    assert Scope.MANAGE.grants(Scope.MANAGE)
    assert Scope.MANAGE.grants(Scope.PREDICT)
    assert Scope.PREDICT.grants(Scope.PREDICT)
    assert not Scope.PREDICT.grants(Scope.MANAGE)


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.1.2.3", True),
        ("localhost", True),
        ("LOCALHOST", True),
        ("::1", True),
        ("[::1]", True),
        ("::ffff:127.0.0.1", True),
        ("0.0.0.0", False),
        ("::", False),
        ("", False),
        ("10.0.0.5", False),
        ("192.168.1.1", False),
        ("example.org", False),
        ("localhost.example.org", False),
    ],
)
def test_loopback_addresses(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


@pytest.mark.parametrize(
    ("headers", "token"),
    [
        ({"Authorization": "Bearer dh_abc"}, "dh_abc"),
        ({"authorization": "bearer   dh_abc  "}, "dh_abc"),
        ({"standAloneToken": "dh_abc"}, "dh_abc"),
        ({"STANDALONETOKEN": " dh_abc "}, "dh_abc"),
        ({"Authorization": "Basic dXNlcjpwdw==", "standAloneToken": "dh_abc"}, "dh_abc"),
        ({"Authorization": "Bearer dh_a", "standAloneToken": "dh_b"}, "dh_a"),
        ({"Authorization": "Bearer "}, None),
        ({"Authorization": "dh_abc"}, None),
        ({"standAloneToken": ""}, None),
        ({}, None),
    ],
)
def test_token_headers(headers: dict[str, str], token: str | None) -> None:
    assert token_of(CIMultiDict(headers)) == token


def test_the_document_marks_what_the_middleware_enforces() -> None:
    ok = {"200": {"description": "OK"}}
    document: dict[str, Any] = {
        "info": {"title": "t", "version": "1", "description": "Models."},
        "paths": {
            "/p/v2/health": {"get": {"responses": dict(ok)}},
            "/p/v2/models/": {"get": {"responses": dict(ok)}},
            "/p/v2/models/demo/predict/": {"post": {"responses": dict(ok)}},
            "/p/v2/models/demo/train/{job_id}": {
                "get": {"responses": dict(ok)},
                "delete": {"responses": dict(ok)},
            },
        },
    }
    paths = document_security(document, "/p")["paths"]
    schemes = document["components"]["securitySchemes"]
    assert schemes["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "An access token from `deepaas-host token create`.",
    }
    assert schemes["standAloneToken"]["in"] == "header"
    assert schemes["standAloneToken"]["name"] == "standAloneToken"

    health = paths["/p/v2/health"]["get"]
    assert "security" not in health
    assert set(health["responses"]) == {"200"}
    for path, method, scope in [
        ("/p/v2/models/", "get", "predict"),
        ("/p/v2/models/demo/predict/", "post", "predict"),
        ("/p/v2/models/demo/train/{job_id}", "get", "predict"),
        ("/p/v2/models/demo/train/{job_id}", "delete", "manage"),
    ]:
        operation = paths[path][method]
        assert operation["security"] == [{"bearer": []}, {"standAloneToken": []}]
        assert operation["x-required-scope"] == scope
        expected = {"200", "401", "403"} if scope == "manage" else {"200", "401"}
        assert set(operation["responses"]) == expected
    assert document["info"]["description"].startswith("Models. ")
