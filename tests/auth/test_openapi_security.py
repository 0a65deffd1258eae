"""The served OpenAPI document names the token each operation needs."""

from __future__ import annotations

from typing import TYPE_CHECKING

from openapi_spec_validator import validate

from deepaas_host.auth import required_scope

if TYPE_CHECKING:
    from conftest import Host

METHODS = ("get", "put", "post", "delete", "patch")


def test_every_operation_carries_the_scope_the_host_enforces(host: Host) -> None:
    document = host.get("/v2/openapi.json").json()
    validate(document)
    assert set(document["components"]["securitySchemes"]) == {"bearer", "standAloneToken"}
    scopes: dict[str, set[str]] = {}
    for path, item in document["paths"].items():
        for method in METHODS:
            if method not in item:
                continue
            operation = item[method]
            needed = required_scope(method, path)
            if needed is None:
                assert "security" not in operation, (method, path)
                assert "401" not in operation["responses"], (method, path)
                continue
            assert operation["x-required-scope"] == needed.value
            assert operation["security"] == [{"bearer": []}, {"standAloneToken": []}]
            assert "401" in operation["responses"]
            assert ("403" in operation["responses"]) is (needed.value == "manage")
            scopes.setdefault(needed.value, set()).add(f"{method.upper()} {path}")
    assert "GET /v2/models/" in scopes["predict"]
    assert "POST /v2/models/demo/predict/" in scopes["predict"]
    assert "POST /v2/models/demo/train/" in scopes["manage"]
    assert "DELETE /v2/models/demo/train/{job_id}" in scopes["manage"]
