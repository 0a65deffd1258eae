"""Meta routes: ``/``, ``/v2/``, ``/v2/models/``, ``/v2/models/{name}/``, 404s, request ids."""

from __future__ import annotations

import re
import uuid

import pytest
import requests
from conftest import EXAMPLE_MODELS, Host
from deepaas_host_demo.model import DemoModel

from deepaas_host.model.discovery import quiet_legacy_warnings

from .conftest import assert_error

with quiet_legacy_warnings():  # the legacy package uses DEEPaaS-era marshmallow idioms
    from deepaas_legacy_plugin import api as legacy_api
    from deepaas_legacy_plugin.klass import LegacyModel


#: Example models that implement ``train``.
TRAINABLE = {"demo", "iris", "legacy"}


def test_root_lists_v2_with_a_working_self_link(host: Host) -> None:
    response = host.get("/")
    assert response.status_code == 200
    versions = response.json()["versions"]
    assert [v["id"] for v in versions] == ["v2"]
    (self_link,) = [link for link in versions[0]["links"] if link["rel"] == "self"]
    assert self_link["href"] == f"{host.url}/v2/"
    followed = host.get("/v2/")
    assert followed.status_code == 200
    assert followed.json()["id"] == "v2"


def test_v2_root_links_resolve(host: Host) -> None:
    body = host.get("/v2/").json()
    rels = {link["rel"]: link["href"] for link in body["links"]}
    assert {"self", "models", "health", "describedby", "help"} <= set(rels)
    for rel in ("models", "health", "describedby", "help"):
        assert rels[rel].startswith(host.url + "/")
        r = host.get(rels[rel][len(host.url) :])
        assert r.status_code == 200, (rel, r.status_code)


def test_models_lists_every_served_model_with_metadata_and_links(host: Host) -> None:
    response = host.get("/v2/models/")
    assert response.status_code == 200
    models = {m["id"]: m for m in response.json()["models"]}
    # Online plugins are served under /v2/online/; a plugin with its own learn() is a model.
    assert set(models) == {*EXAMPLE_MODELS, "word-counts"}
    expected_meta = {
        "demo": DemoModel().get_metadata(),
        "legacy": legacy_api.get_metadata(),
        "legacy_class": LegacyModel().get_metadata(),
        "legacy_instance": LegacyModel("legacy_instance").get_metadata(),
    }
    for name, model in models.items():
        assert model["name"] == name
        assert isinstance(model["description"], str) and model["description"]
        if name in expected_meta:
            for key, value in expected_meta[name].items():
                assert model[key] == value, (name, key)
        links = {link["rel"]: link["href"] for link in model["links"]}
        base = f"{host.url}/v2/models/{name}/"
        assert links["self"] == base
        assert links["predict"] == base + "predict/"
        if name in TRAINABLE:
            assert links["train"] == base + "train/"
        else:
            assert "train" not in links, name


@pytest.mark.parametrize("name", EXAMPLE_MODELS)
def test_model_document_equals_its_entry_in_the_list(host: Host, name: str) -> None:
    listed = {m["id"]: m for m in host.get("/v2/models/").json()["models"]}
    response = host.get(f"/v2/models/{name}/")
    assert response.status_code == 200
    assert response.json() == listed[name]


@pytest.mark.parametrize("name", ["legacy_class", "legacy_instance"])
def test_model_without_train_has_no_train_route(host: Host, name: str) -> None:
    for method in ("post", "get"):
        response = getattr(host, method)(f"/v2/models/{name}/train/")
        body = assert_error(response, 404, "NotFound")
        assert f"/v2/models/{name}/train/" in body["message"]
    assert_error(host.get(f"/v2/models/{name}/train/some-job"), 404, "NotFound")
    # the route a trainable model has does exist
    assert host.get("/v2/models/legacy/train/").status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        "/v2/models/nonexistent/",
        "/v2/models/nonexistent/predict/",
        "/v2/models/nonexistent/train/",
    ],
)
def test_unknown_model_is_a_json_404_naming_it(host: Host, path: str) -> None:
    response = host.post(path) if path.endswith(("predict/", "train/")) else host.get(path)
    body = assert_error(response, 404, "ModelNotFound")
    assert "'nonexistent'" in body["message"]


def test_unknown_route_and_wrong_method_are_json(host: Host) -> None:
    assert_error(host.get("/no/such/route"), 404, "NotFound")
    body = assert_error(host.delete("/v2/models/"), 405, "MethodNotAllowed")
    assert "DELETE" in body["message"]
    # a served model's unknown sub-route is a plain 404, not "model not found"
    assert_error(host.get("/v2/models/demo/nothing-here"), 404, "NotFound")


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("GET", "/v2/models/demo/predict/", {"POST"}),
        ("PUT", "/v2/models/iris/predict/", {"POST"}),
        ("DELETE", "/v2/models/legacy_class/", {"GET"}),
        ("PATCH", "/v2/models/demo/train/", {"GET", "POST"}),
        ("POST", "/v2/models/demo/train/abc", {"GET", "DELETE"}),
    ],
)
def test_wrong_method_on_a_model_route_is_405(
    host: Host, method: str, path: str, allowed: set[str]
) -> None:
    response = requests.request(method, host.url + path, timeout=30)
    body = assert_error(response, 405, "MethodNotAllowed")
    assert method in body["message"]
    assert {m.strip() for m in response.headers["Allow"].split(",")} == allowed


def test_legacy_class_and_instance_entry_points_are_distinct_models(host: Host) -> None:
    a = host.post("/v2/models/legacy_class/predict/", params={"top_k": 2}).json()
    b = host.post("/v2/models/legacy_instance/predict/", params={"top_k": 2}).json()
    # warm() ran in the worker for both; the second label is the model's own name
    assert [p["label"] for p in a["predictions"]] == ["warm", "legacy_class"]
    assert [p["label"] for p in b["predictions"]] == ["warm", "legacy_instance"]


def test_health_reports_ready_pools(host: Host) -> None:
    response = host.get("/v2/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok" and body["live"] is True and body["ready"] is True
    assert body["pools"]["predict"]["size"] == 2
    assert body["pools"]["predict"]["ready"] == 2
    assert len(body["pools"]["predict"]["pids"]) == 2


# -- X-Request-ID ---------------------------------------------------------------


def test_request_id_is_echoed(host: Host) -> None:
    rid = f"test-{uuid.uuid4()}"
    for response in (
        host.get("/v2/models/", headers={"X-Request-ID": rid}),
        host.post("/v2/models/demo/predict/", headers={"X-Request-ID": rid}),
        host.post(
            "/v2/models/demo/predict/",
            params={"count": 0},
            headers={"X-Request-ID": rid},
        ),
    ):
        assert response.headers["X-Request-ID"] == rid
    # errors carry it in the body too
    assert response.status_code == 422
    assert response.json()["request_id"] == rid


def test_request_id_is_generated_unique_when_absent(host: Host) -> None:
    ids = [host.get("/v2/").headers["X-Request-ID"] for _ in range(5)]
    ids.append(host.get("/nowhere").headers["X-Request-ID"])
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids), ids
    assert len(set(ids)) == len(ids)


def test_unusable_request_id_is_replaced(host: Host) -> None:
    too_long = "x" * 500
    response = host.get("/v2/", headers={"X-Request-ID": too_long})
    assert response.status_code == 200
    assert re.fullmatch(r"[0-9a-f]{32}", response.headers["X-Request-ID"])
